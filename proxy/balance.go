package proxy

import "sync/atomic"

// selector picks the next node for a request among those not yet tried (bit i of tried = nodes[i]).
// It returns -1 when no untried node is Available.
type selector interface {
	Select(nodes []*node, tried uint64) int
}

// roundRobin cycles over the available nodes.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Select(nodes []*node, tried uint64) int {
	n := uint64(len(nodes))
	start := r.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		idx := (start + i) % n
		if tried&(1<<idx) == 0 && nodes[idx].Available() {
			return int(idx)
		}
	}
	return -1
}
