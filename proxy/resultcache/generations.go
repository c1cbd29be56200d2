package resultcache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// maxTrackedIndices bounds the per-index generation table; past it the table is emptied and
// the epoch bumped, which invalidates everything once instead of growing without end when
// clients write to ever new index names.
const maxTrackedIndices = 1 << 16

// generations is the invalidation state: an epoch every key includes, an "any write" counter
// that keys of searches with an unknown reach include, and one counter per concrete index.
type generations struct {
	epoch    counter // bumped by writes whose reach is unknown
	anyWrite counter // bumped by every write

	mu      sync.RWMutex
	indices map[string]*counter

	topoVersion atomic.Uint64
	topo        atomic.Pointer[Topology]
}

// counter is one generation and the time it was last bumped, so that searches can tell a
// write that the cluster may not have made searchable yet (see Keyer.KeyAt).
type counter struct {
	gen  atomic.Uint64
	last atomic.Int64 // unix nanoseconds of the last bump
}

// bump starts a new generation. A write that is not visible at once records its time, so that
// responses filled before the cluster's next refresh are not stored; a visible one (a refresh)
// makes every earlier write on the counter visible too.
func (c *counter) bump(visible bool) {
	if visible {
		c.last.Store(0)
	} else {
		c.last.Store(time.Now().UnixNano())
	}
	c.gen.Add(1)
}

// load returns the generation and raises *last to the counter's last bump.
func (c *counter) load(last *int64) uint64 {
	g := c.gen.Load()
	if l := c.last.Load(); l > *last {
		*last = l
	}
	return g
}

func (g *generations) index(name string, last *int64) uint64 {
	// Callers hold g.mu.RLock.
	if c := g.indices[name]; c != nil {
		return c.load(last)
	}
	return 0
}

func (g *generations) bumpIndex(name string, visible bool) {
	g.mu.RLock()
	c := g.indices[name]
	g.mu.RUnlock()
	if c != nil {
		c.bump(visible)
		return
	}
	g.mu.Lock()
	if c = g.indices[name]; c == nil {
		if len(g.indices) >= maxTrackedIndices {
			g.indices = make(map[string]*counter)
			g.epoch.bump(true)
		}
		c = new(counter)
		g.indices[name] = c
	}
	g.mu.Unlock()
	c.bump(visible)
}

// Topology says which names are concrete indices and which are aliases (and of what). Build
// it with NewTopology or ParseAliases; it is read-only once built.
type Topology struct {
	indices map[string]struct{}
	aliases map[string][]string
}

// NewTopology returns a topology of the given concrete indices and aliases (alias name →
// the concrete indices it points to).
func NewTopology(indices []string, aliases map[string][]string) *Topology {
	t := &Topology{indices: make(map[string]struct{}, len(indices)), aliases: make(map[string][]string, len(aliases))}
	for _, name := range indices {
		t.indices[name] = struct{}{}
	}
	for a, idx := range aliases {
		t.aliases[a] = slices.Clone(idx)
	}
	return t
}

// ParseAliases builds a Topology from the body of `GET /_alias` (add
// `?expand_wildcards=all` to include hidden indices):
// {"index-1":{"aliases":{"alias-a":{}}},"index-2":{"aliases":{}}}.
func ParseAliases(body []byte) (*Topology, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("cannot parse the _alias response: invalid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, fmt.Errorf("cannot parse the _alias response: want a JSON object, got %s", root.Type)
	}
	t := &Topology{indices: make(map[string]struct{}), aliases: make(map[string][]string)}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		index := k.String()
		if !v.IsObject() {
			err = fmt.Errorf("cannot parse the _alias response: index %q is not an object", index)
			return false
		}
		t.indices[index] = struct{}{}
		v.Get("aliases").ForEach(func(a, _ gjson.Result) bool {
			t.aliases[a.String()] = append(t.aliases[a.String()], index)
			return true
		})
		return true
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// resolve maps a name from a request to the concrete indices it stands for. ok is false
// when the name's reach is unknown: a pattern, an unknown name (without assumeConcrete), or
// an alias of nothing.
func (t *Topology) resolve(name string, assumeConcrete bool) (indices []string, ok bool) {
	if isPattern(name) {
		return nil, false
	}
	if t != nil {
		if _, ok := t.indices[name]; ok {
			return nil, true // the name itself
		}
		if idx, ok := t.aliases[name]; ok && len(idx) > 0 {
			return idx, true
		}
	}
	return nil, assumeConcrete
}

// isPattern reports whether an index name may stand for indices the proxy cannot list:
// empty, _all, wildcards, exclusions, date math, cross-cluster names.
func isPattern(name string) bool {
	if name == "" || name[0] == '-' || name[0] == '+' || name[0] == '_' { // "_all" too
		return true
	}
	for i := 0; i < len(name); i++ {
		if patternByte[name[i]] {
			return true
		}
	}
	return false
}

// patternByte marks the bytes that make a name a pattern: wildcards, date math, and the
// cluster separator. A table, since strings.ContainsAny costs ≈ 60 ns per name and every
// cached search resolves its index names.
var patternByte = [256]bool{'*': true, '?': true, '<': true, '>': true, ':': true, '{': true, '}': true}

// appendGenerations appends what a search over the index expressions exprs depends on. A nil
// exprs entry means "no index named" (all indices).
// *last is raised to the latest bump of every generation appended. With names non-nil, the
// shared counters the same search depends on are appended to *names.
func (g *generations) appendGenerations(dst []byte, exprs []string, assumeConcrete bool, last *int64, names *[]string) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, g.epoch.load(last))
	if names != nil {
		*names = append(*names, sharedEpoch)
	}
	topo := g.topo.Load()
	// First pass: is the whole reach known?
	for _, expr := range exprs {
		for rest, more := expr, true; more; {
			var name string
			name, rest, more = strings.Cut(rest, ",")
			if _, ok := topo.resolve(name, assumeConcrete); !ok {
				dst = append(dst, 'A')
				if names != nil {
					*names = append(*names, sharedAny)
				}
				return binary.LittleEndian.AppendUint64(dst, g.anyWrite.load(last))
			}
		}
	}
	dst = append(dst, 'I')
	g.mu.RLock()
	for _, expr := range exprs {
		for rest, more := expr, true; more; {
			var name string
			name, rest, more = strings.Cut(rest, ",")
			idx, _ := topo.resolve(name, assumeConcrete)
			if idx == nil {
				dst = binary.LittleEndian.AppendUint64(dst, g.index(name, last))
				if names != nil {
					*names = append(*names, name)
				}
				continue
			}
			dst = binary.AppendUvarint(dst, uint64(len(idx)))
			for _, i := range idx {
				dst = binary.LittleEndian.AppendUint64(dst, g.index(i, last))
				if names != nil {
					*names = append(*names, i)
				}
			}
		}
	}
	g.mu.RUnlock()
	return dst
}

// invalidate applies a write: every write bumps anyWrite; a write of known reach bumps the
// generations of the concrete indices it touches, any other bumps the epoch. It returns the
// shared counters to bump the same way (names and whether each bump is visible at once).
func (g *generations) invalidate(w Write, assumeConcrete bool) (names []string, visible []bool) {
	if !w.IsWrite() {
		return nil, nil
	}
	if w.Topology {
		// Names may now mean other indices: forget them until the next SetTopology, and
		// refuse a topology fetched before this write.
		// Under mu, so SetTopology cannot check the version before this and store after.
		g.mu.Lock()
		g.topoVersion.Add(1)
		g.topo.Store(nil)
		g.mu.Unlock()
	}
	topo := g.topo.Load()
	all := w.All
	if !all {
		for _, name := range w.Indices {
			if _, ok := topo.resolve(name, assumeConcrete); !ok {
				all = true
				break
			}
		}
	}
	// epoch and anyWrite cover several indices: a visible write to one says nothing of the
	// others' pending writes, so only a refresh of everything clears their time.
	if all {
		g.epoch.bump(w.Visible)
		names, visible = append(names, sharedEpoch), append(visible, w.Visible)
	} else {
		for _, name := range w.Indices {
			idx, _ := topo.resolve(name, assumeConcrete)
			if idx == nil {
				g.bumpIndex(name, w.Visible)
				names, visible = append(names, name), append(visible, w.Visible)
			}
			for _, i := range idx {
				g.bumpIndex(i, w.Visible)
				names, visible = append(names, i), append(visible, w.Visible)
			}
		}
	}
	g.anyWrite.bump(w.Visible && all)
	names, visible = append(names, sharedAny), append(visible, w.Visible && all)
	return names, visible
}
