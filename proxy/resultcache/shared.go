package resultcache

import (
	"context"
	"encoding/binary"
	"time"
)

// Shared is the fleet's copy of the generations, kept outside the process (cache/l2.Counters
// implements it over Redis). With it, every key also holds the shared generations of what the
// search depends on, read in one round trip per key, and every write bumps them there too, so
// a write through any replica makes every replica's cached results unreachable at once.
//
// Counter names are index names, "_epoch" and "_any" (no index name starts with '_').
type Shared interface {
	// Load appends an incarnation, then for each name its generation and the unix nanoseconds
	// of its last bump not visible at once (0: none). ok false: unavailable; dst then gains
	// one number naming the current outage.
	Load(ctx context.Context, names []string, dst []uint64) ([]uint64, bool)
	// Bump increments each name; times[i] is the unix nanoseconds of a write the cluster may
	// not show yet, 0 for a visible one.
	Bump(ctx context.Context, names []string, times []int64) error
}

const (
	sharedEpoch = "_epoch"
	sharedAny   = "_any"
)

// SetShared makes the Keyer use s for the fleet's generations; call it before use. Without s
// (or while s is unavailable, which it then says with a different key) invalidation covers
// only the writes that pass through this process.
func (k *Keyer) SetShared(s Shared) { k.shared = s }

// appendShared appends the shared generations of names to a key and raises *last to their
// latest pending write. While Shared is unavailable the key says so ('L' and the outage), so
// responses cached then are never mistaken for ones cached under the fleet's generations.
func (k *Keyer) appendShared(dst []byte, names []string, last *int64) []byte {
	var buf [16]uint64
	vals, ok := k.shared.Load(context.Background(), names, buf[:0])
	if !ok {
		dst = append(dst, 'L')
		return binary.LittleEndian.AppendUint64(dst, vals[0])
	}
	dst = append(dst, 'S')
	dst = binary.LittleEndian.AppendUint64(dst, vals[0])
	for i := 1; i+1 < len(vals); i += 2 {
		dst = binary.LittleEndian.AppendUint64(dst, vals[i])
		if t := int64(vals[i+1]); t > *last {
			*last = t
		}
	}
	return dst
}

// bumpShared publishes a write's bumps; a failure is the Shared's to remember (see Shared).
func (k *Keyer) bumpShared(names []string, visible []bool) {
	now := time.Now().UnixNano()
	times := make([]int64, len(names))
	for i, v := range visible {
		if !v {
			times[i] = now
		}
	}
	k.shared.Bump(context.Background(), names, times)
}
