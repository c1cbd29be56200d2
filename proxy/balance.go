package proxy

import "sync/atomic"

// selector picks the next node for a request among those not yet tried (bit i of tried = nodes[i])
// for which ok holds. It returns -1 when there is none.
type selector interface {
	Select(nodes []*node, tried uint64, ok func(*node) bool) int
}

// roundRobin cycles over the nodes.
type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Select(nodes []*node, tried uint64, ok func(*node) bool) int {
	n := uint64(len(nodes))
	start := r.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		idx := (start + i) % n
		if tried&(1<<idx) == 0 && ok(nodes[idx]) {
			return int(idx)
		}
	}
	return -1
}

// pick chooses the next node: an Available one among the untried. When no node at all is
// Available (every one failed its checks or was ejected) and the proxy fails open
// (HealthFailOpen), health is disregarded and any untried node with room in its pool is
// chosen: a node the checks got wrong then serves, and one that is really down answers with
// its own error. With Available nodes that were all tried it returns -1, so the retry loop
// waits for them instead of turning to the unhealthy ones.
func (s *Server) pick(tried uint64) int {
	idx := s.sel.Select(s.nodes, tried, (*node).Available)
	if idx >= 0 || !s.cfg.HealthFailOpen {
		return idx
	}
	for _, n := range s.nodes {
		if n.Available() {
			return -1
		}
	}
	idx = s.sel.Select(s.nodes, tried, (*node).hasRoom)
	if idx >= 0 {
		failOpenTotal.Inc()
	}
	return idx
}
