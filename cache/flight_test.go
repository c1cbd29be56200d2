package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDoSingleFlight1000(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(testConfig(1 << 20))
		defer c.fills.stop()
		var calls atomic.Int32
		release := make(chan struct{})
		fn := func(ctx context.Context) ([]byte, error) {
			calls.Add(1)
			<-release
			return []byte("result"), nil
		}
		const n = 1000
		var wg sync.WaitGroup
		vals := make([][]byte, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { vals[i], _, errs[i] = c.Do(context.Background(), []byte("k"), fn) })
		}
		synctest.Wait() // every goroutine is now blocked in Do
		if got := calls.Load(); got != 1 {
			t.Fatalf("fn called %d times while filling; want 1", got)
		}
		if got := c.Stats().Collapsed; got != n-1 {
			t.Fatalf("collapsed = %d; want %d", got, n-1)
		}
		close(release)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || string(vals[i]) != "result" {
				t.Fatalf("caller %d got %q, %v", i, vals[i], errs[i])
			}
		}
		if v, hit, err := c.Do(context.Background(), []byte("k"), fn); !hit || err != nil || string(v) != "result" {
			t.Fatalf("Do after fill = %q, hit %v, %v; want a hit", v, hit, err)
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("fn called %d times in total; want 1", got)
		}
	})
}

func TestDoWaiterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(testConfig(1 << 20))
		defer c.fills.stop()
		release := make(chan struct{})
		fn := func(ctx context.Context) ([]byte, error) { <-release; return []byte("v"), nil }
		var leaderVal []byte
		var leaderErr error
		done := make(chan struct{})
		go func() {
			leaderVal, _, leaderErr = c.Do(context.Background(), []byte("k"), fn)
			close(done)
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, _, err := c.Do(ctx, []byte("k"), fn)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiter error = %v; want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("waiter returned after %v; want its own 1s deadline", waited)
		}
		close(release)
		<-done
		if leaderErr != nil || string(leaderVal) != "v" {
			t.Fatalf("leader got %q, %v", leaderVal, leaderErr)
		}
	})
}

func TestDoLeaderCancelDoesNotFailWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(testConfig(1 << 20))
		defer c.fills.stop()
		release := make(chan struct{})
		var fillErr error
		fn := func(ctx context.Context) ([]byte, error) {
			select {
			case <-release:
				return []byte("v"), nil
			case <-ctx.Done():
				fillErr = ctx.Err()
				return nil, ctx.Err()
			}
		}
		leaderCtx, cancelLeader := context.WithCancel(context.Background())
		leaderDone := make(chan error)
		go func() {
			_, _, err := c.Do(leaderCtx, []byte("k"), fn)
			leaderDone <- err
		}()
		synctest.Wait()
		waiterDone := make(chan []byte)
		go func() {
			v, _, err := c.Do(context.Background(), []byte("k"), fn)
			if err != nil {
				t.Errorf("waiter failed: %v", err)
			}
			waiterDone <- v
		}()
		synctest.Wait()
		cancelLeader()
		if err := <-leaderDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("leader error = %v; want Canceled", err)
		}
		close(release)
		if v := <-waiterDone; string(v) != "v" {
			t.Fatalf("waiter got %q", v)
		}
		if fillErr != nil {
			t.Fatalf("fill saw its context end: %v", fillErr)
		}
		if v, ok := c.Get([]byte("k")); !ok || string(v) != "v" {
			t.Fatalf("value not cached after the leader left: %q, %v", v, ok)
		}
	})
}

func TestDoFillTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(1 << 20)
		cfg.FillTimeout = 5 * time.Second
		c := New(cfg)
		defer c.fills.stop()
		fn := func(ctx context.Context) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		start := time.Now()
		_, _, err := c.Do(context.Background(), []byte("k"), fn)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Fatalf("Do = %v after %v; want DeadlineExceeded after the 5s fill timeout", err, time.Since(start))
		}
	})
}

func TestDoErrorsAreNotCached(t *testing.T) {
	c := New(testConfig(1 << 20))
	calls := 0
	boom := errors.New("boom")
	fn := func(ctx context.Context) ([]byte, error) {
		calls++
		if calls == 1 {
			return nil, boom
		}
		return []byte("ok"), nil
	}
	if _, _, err := c.Do(context.Background(), []byte("k"), fn); !errors.Is(err, boom) {
		t.Fatalf("first Do error = %v; want boom", err)
	}
	v, hit, err := c.Do(context.Background(), []byte("k"), fn)
	if err != nil || hit || string(v) != "ok" || calls != 2 {
		t.Fatalf("second Do = %q, hit %v, %v after %d calls; want a fresh fill", v, hit, err, calls)
	}
}

func TestDoPanicBecomesError(t *testing.T) {
	c := New(testConfig(1 << 20))
	_, _, err := c.Do(context.Background(), []byte("k"), func(context.Context) ([]byte, error) { panic("bad") })
	if err == nil || err.Error() != "cannot fill cache: fill function panicked: bad" {
		t.Fatalf("Do with panicking fn = %v", err)
	}
}

func TestDoAfterFlushDoesNotJoinOldFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(testConfig(1 << 20))
		defer c.fills.stop()
		release := make(chan struct{})
		go c.Do(context.Background(), []byte("k"), func(context.Context) ([]byte, error) {
			<-release
			return []byte("before"), nil
		})
		synctest.Wait()
		c.Flush()
		v, _, err := c.Do(context.Background(), []byte("k"), func(context.Context) ([]byte, error) {
			return []byte("after"), nil
		})
		if err != nil || string(v) != "after" {
			t.Fatalf("Do after Flush = %q, %v; want a new fill", v, err)
		}
		close(release)
		synctest.Wait()
		if v, ok := c.Get([]byte("k")); !ok || string(v) != "after" {
			t.Fatalf("Get = %q, %v; the pre-Flush fill must not overwrite", v, ok)
		}
	})
}

// A fill runs as long as somebody waits for it: the last waiter leaving cancels it, and a
// later caller starts a fill of its own instead of joining the cancelled one.
func TestDoFillStopsWhenNobodyWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(testConfig(1 << 20))
		defer c.fills.stop()
		var canceled atomic.Int32
		fn := func(ctx context.Context) ([]byte, error) {
			select {
			case <-ctx.Done():
				canceled.Add(1)
				return nil, ctx.Err()
			case <-time.After(time.Second):
				return []byte("v"), nil
			}
		}
		// Two waiters, one leaves: the fill goes on for the other.
		short, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var longVal []byte
		wg.Go(func() { c.Do(short, []byte("a"), fn) }) //nolint:errcheck
		synctest.Wait()
		wg.Go(func() { longVal, _, _ = c.Do(context.Background(), []byte("a"), fn) })
		synctest.Wait()
		cancel()
		wg.Wait()
		if canceled.Load() != 0 || string(longVal) != "v" {
			t.Fatalf("a fill another caller waited for was cancelled (%d) or lost (%q)", canceled.Load(), longVal)
		}
		// The only waiter leaves: the fill is cancelled.
		only, cancel := context.WithCancel(context.Background())
		go c.Do(only, []byte("b"), fn) //nolint:errcheck
		synctest.Wait()
		cancel()
		synctest.Wait()
		if canceled.Load() != 1 {
			t.Fatalf("a fill nobody waits for was not cancelled")
		}
		if v, _, err := c.Do(context.Background(), []byte("b"), fn); err != nil || string(v) != "v" {
			t.Fatalf("a caller after the cancelled fill: %q, %v", v, err)
		}
	})
}

// DoInline runs the leader's fill in the leader's goroutine: the leader waits for it even
// after its ctx is cancelled, joiners share it, and the value is cached.
func TestDoInlineLeaderRunsFill(t *testing.T) {
	c := New(testConfig(1 << 20))
	defer c.fills.stop()
	started, release := make(chan struct{}), make(chan struct{})
	calls := 0
	fn := func(ctx context.Context) ([]byte, error) {
		calls++
		close(started)
		select {
		case <-release:
			return []byte("v"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	leaderCtx, cancel := context.WithCancel(context.Background())
	type res struct {
		v   []byte
		hit bool
		err error
	}
	leader := make(chan res, 1)
	go func() {
		v, hit, err := c.DoInline(leaderCtx, []byte("k"), fn)
		leader <- res{v, hit, err}
	}()
	<-started
	waiter := make(chan res, 1)
	go func() {
		v, hit, err := c.DoInline(context.Background(), []byte("k"), fn)
		waiter <- res{v, hit, err}
	}()
	for c.Stats().Collapsed == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	if r := <-leader; r.err != nil || string(r.v) != "v" || r.hit {
		t.Fatalf("leader: %+v", r)
	}
	if r := <-waiter; r.err != nil || string(r.v) != "v" {
		t.Fatalf("waiter: %+v", r)
	}
	if v, ok := c.Get([]byte("k")); !ok || string(v) != "v" || calls != 1 {
		t.Fatalf("cached %q %v after %d fills", v, ok, calls)
	}
}

// A leader whose ctx ends while nobody else waits cancels its inline fill, as in Do: work that
// nobody waits for stops (a model call in flight, say).
func TestDoInlineAloneLeaderCancelsFill(t *testing.T) {
	c := New(testConfig(1 << 20))
	defer c.fills.stop()
	started := make(chan struct{})
	fn := func(ctx context.Context) ([]byte, error) {
		close(started)
		<-ctx.Done() // runs until cancelled
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.DoInline(ctx, []byte("k"), fn)
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second): // FillTimeout is far longer; this only catches a hang
		t.Fatal("the fill kept running after its only caller left")
	}
	if _, ok := c.Get([]byte("k")); ok {
		t.Fatal("a cancelled fill was cached")
	}
}
