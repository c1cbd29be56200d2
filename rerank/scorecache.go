package rerank

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/vlproxy/vlproxy/model"
)

// Cache is the part of cache.Cache the reranker uses: scores per document (Get/Set) and
// single-flight for identical concurrent windows (Do). A cache fault is a miss.
type Cache interface {
	Do(ctx context.Context, key []byte, fn func(ctx context.Context) ([]byte, error)) (val []byte, hit bool, err error)
	Get(key []byte) ([]byte, bool)
	Set(key, val []byte) bool
}

// errPartial keeps a window with unscored documents out of the batch cache entry.
var errPartial = errors.New("rerank: partial scores are not cached")

// scoreKey appends the cache key of one candidate's score:
// version, scorer, query key, fields signature, _index, _id, then _seq_no or a content hash.
func scoreKey(dst []byte, scorer, queryKey string, fieldsSig uint64, h *hitInfo) []byte {
	dst = append(dst, "rs1\x00"...)
	dst = append(dst, scorer...)
	dst = append(dst, 0)
	dst = append(dst, queryKey...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, fieldsSig)
	dst = append(dst, h.index...)
	dst = append(dst, 0)
	dst = append(dst, h.id...)
	dst = append(dst, 0)
	if h.hasSeq {
		dst = append(dst, 's')
		dst = strconv.AppendInt(dst, h.seq, 10)
	} else {
		var mh maphash.Hash
		mh.SetSeed(hashSeed1)
		mh.WriteString(h.doc.Text)
		mh.WriteByte(0)
		mh.WriteString(h.doc.Image)
		dst = append(dst, 'h')
		dst = binary.LittleEndian.AppendUint64(dst, mh.Sum64())
		mh.SetSeed(hashSeed2)
		mh.WriteString(h.doc.Text)
		mh.WriteByte(0)
		mh.WriteString(h.doc.Image)
		dst = binary.LittleEndian.AppendUint64(dst, mh.Sum64())
	}
	return dst
}

func encodeScores(s []float64) []byte {
	b := make([]byte, 8*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

func decodeScores(b []byte, n int) ([]float64, bool) {
	if len(b) != 8*n {
		return nil, false
	}
	s := make([]float64, n)
	for i := range s {
		s[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(s[i]) {
			return nil, false
		}
	}
	return s, true
}

// scoreWindow scores the window: per-document cache first, then one scorer call for the
// misses, collapsed with identical concurrent windows. It returns the scores (NaN: not
// scored), whether all came from the cache, and the error when none could be scored.
//
// The scorer's deadline is scoreBy; ctx (the caller's wait) runs a little longer, so that a
// scorer returning partial scores at scoreBy is heard. Cache.Do may run fn in another
// goroutine with a context that has lost ctx's deadline, so fn sets scoreBy itself.
func (r *Reranker) scoreWindow(ctx context.Context, scoreBy time.Time, p *Plan, hits []hitInfo) ([]float64, bool, error) {
	n := len(hits)
	scores := make([]float64, n)
	for i := range scores {
		scores[i] = math.NaN()
	}
	name := r.scorer.Name()
	var keys [][]byte
	var miss []int
	if r.cache != nil {
		keys = make([][]byte, n)
		arena := make([]byte, 0, n*(64+len(name)+len(p.queryKey)))
		for i := range hits {
			start := len(arena)
			arena = scoreKey(arena, name, p.queryKey, p.fieldsSig, &hits[i])
			keys[i] = arena[start:len(arena):len(arena)]
			if v, ok := r.cache.Get(keys[i]); ok && len(v) == 8 {
				scores[i] = math.Float64frombits(binary.LittleEndian.Uint64(v))
				continue
			}
			miss = append(miss, i)
		}
		if len(miss) == 0 {
			return scores, true, nil
		}
	} else {
		miss = make([]int, n)
		for i := range miss {
			miss[i] = i
		}
	}
	docs := make([]model.Document, len(miss))
	for j, i := range miss {
		docs[j] = hits[i].doc
	}
	if r.cache == nil {
		sctx, cancel := context.WithDeadline(ctx, scoreBy)
		defer cancel()
		got, err := r.scorer.Score(sctx, p.query, docs)
		if err != nil {
			return nil, false, err
		}
		if len(got) != len(docs) {
			return nil, false, badOutput("scorer returned %d scores for %d documents", len(got), len(docs))
		}
		for j, i := range miss {
			scores[i] = got[j]
		}
		return scores, false, nil
	}

	// Single-flight key: the set of missing documents of this window.
	bk := append([]byte("rb1\x00"), name...)
	var mh maphash.Hash
	mh.SetSeed(hashSeed1)
	for _, i := range miss {
		mh.Write(keys[i])
		mh.WriteByte(0)
	}
	bk = binary.LittleEndian.AppendUint64(bk, mh.Sum64())
	mh.SetSeed(hashSeed2)
	for _, i := range miss {
		mh.Write(keys[i])
		mh.WriteByte(0)
	}
	bk = binary.LittleEndian.AppendUint64(bk, mh.Sum64())

	var mu sync.Mutex // fn may still run after Do gave up waiting
	var leaderScores []float64
	var leaderErr error
	val, hit, err := r.cache.Do(ctx, bk, func(fctx context.Context) ([]byte, error) {
		fctx, cancel := context.WithDeadline(fctx, scoreBy)
		defer cancel()
		got, err := r.scorer.Score(fctx, p.query, docs)
		if err == nil && len(got) != len(docs) {
			err = badOutput("scorer returned %d scores for %d documents", len(got), len(docs))
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			leaderErr = err
			return nil, err
		}
		leaderScores = got
		partial := false
		for j, i := range miss {
			if math.IsNaN(got[j]) {
				partial = true
				continue
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(got[j]))
			r.cache.Set(keys[i], b[:])
		}
		if partial {
			return nil, errPartial
		}
		return encodeScores(got), nil
	})
	mu.Lock()
	defer mu.Unlock()
	switch {
	case leaderScores != nil: // this request ran the scorer
		for j, i := range miss {
			scores[i] = leaderScores[j]
		}
		return scores, false, nil
	case leaderErr != nil:
		return nil, false, leaderErr
	case err == nil:
		got, ok := decodeScores(val, len(miss))
		if !ok {
			return nil, false, badOutput("cannot decode cached scores")
		}
		for j, i := range miss {
			scores[i] = got[j]
		}
		return scores, hit, nil // a batch hit plus per-document hits: every score came from a cache
	}
	// Another request ran the scorer and it failed or was partial: take what it cached.
	any := false
	for _, i := range miss {
		if v, ok := r.cache.Get(keys[i]); ok && len(v) == 8 {
			scores[i] = math.Float64frombits(binary.LittleEndian.Uint64(v))
			any = true
		}
	}
	if !any {
		if errors.Is(err, errPartial) {
			err = ctx.Err()
			if err == nil {
				err = context.DeadlineExceeded
			}
		}
		return nil, false, err
	}
	return scores, false, nil
}
