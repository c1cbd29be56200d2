package rerank

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/cache"
	"github.com/vlproxy/vlproxy/model"
)

func newRealCache(t *testing.T) *cache.Cache {
	t.Helper()
	return cache.New(cache.Config{Name: "rerank_test", MaxBytes: 1 << 20, TTL: time.Hour, FillTimeout: 5 * time.Second})
}

// slowScorer answers after gate is closed, counting calls.
type slowScorer struct {
	fakeScorer
	gate chan struct{}
}

func (s *slowScorer) Score(ctx context.Context, q model.Document, docs []model.Document) ([]float64, error) {
	<-s.gate
	return s.fakeScorer.Score(ctx, q, docs)
}

func TestApplyWithCachePackage(t *testing.T) {
	// Partial under a deadline through cache.Do (whose fill context drops the caller's deadline).
	s := &fakeScorer{scores: modelScores, block: map[string]bool{"red dress": true}}
	r := newTestReranker(t, testConfig(), s, newRealCache(t))
	req := matchReq(`{` + qRed + `}`)
	req.Opts.Timeout = ptr(30 * time.Millisecond)
	res, _ := run(t, r, req)
	if got := ids(t, res.Body); got != "4,3,6,2,5,1" || res.Status != StatusPartial {
		t.Fatalf("partial: ids %s status %s", got, res.Status)
	}
	// The five scored documents are cached; the sixth is scored now.
	s.block = nil
	res, _ = run(t, r, req)
	if got := ids(t, res.Body); got != "4,3,6,1,2,5" || res.Status != StatusApplied || s.docs.Load() != 7 {
		t.Fatalf("second: ids %s status %s docs %d", got, res.Status, s.docs.Load())
	}
	res, _ = run(t, r, req)
	if res.Status != StatusCached || s.calls.Load() != 2 {
		t.Fatalf("third: status %s calls %d", res.Status, s.calls.Load())
	}
}

func TestApplySingleFlight(t *testing.T) {
	s := &slowScorer{fakeScorer: fakeScorer{scores: modelScores}, gate: make(chan struct{})}
	r := newTestReranker(t, testConfig(), s, newRealCache(t))
	req := matchReq(`{` + qRed + `,"size":3}`)
	req.Opts.Timeout = ptr(5 * time.Second)
	const n = 8
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], _ = run(t, r, req)
		}(i)
	}
	// Let every request reach the cache before the one model call answers.
	time.Sleep(50 * time.Millisecond)
	close(s.gate)
	wg.Wait()
	if s.calls.Load() != 1 {
		t.Fatalf("%d scorer calls for %d identical windows", s.calls.Load(), n)
	}
	for _, res := range results {
		if ids(t, res.Body) != "4,3,6" {
			t.Fatalf("ids %s status %s", ids(t, res.Body), res.Status)
		}
	}
}
