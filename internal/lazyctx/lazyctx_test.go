package lazyctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

type key struct{}

func TestDeadlineAndValues(t *testing.T) {
	parent := context.WithValue(context.Background(), key{}, "v")
	d := time.Now().Add(time.Hour)
	ctx, cancel := WithDeadline(parent, d)
	defer cancel()
	if _, ok := ctx.(*Ctx); !ok {
		t.Fatalf("under a parent that is never cancelled: %T, want a lazy context", ctx)
	}
	if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("Deadline = %v %v; want %v", got, ok, d)
	}
	if ctx.Value(key{}) != "v" || ctx.Err() != nil {
		t.Fatalf("Value %v, Err %v", ctx.Value(key{}), ctx.Err())
	}
	// A child takes the earlier deadline and stays lazy; so does a later one.
	child, cancelChild := WithTimeout(ctx, 2*time.Hour)
	defer cancelChild()
	if got, _ := child.Deadline(); !got.Equal(d) || child.(*Ctx).real != nil || ctx.(*Ctx).real != nil {
		t.Fatalf("child deadline %v (want %v), or something was made real", got, d)
	}
	if !DeadlineOnly(ctx) || !DeadlineOnly(child) || !DeadlineOnly(context.Background()) {
		t.Fatal("DeadlineOnly false for a lazy or never-cancelled context")
	}
}

func TestCancellableParentIsPlainContext(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := WithTimeout(parent, time.Hour)
	defer cancel()
	if _, ok := ctx.(*Ctx); ok {
		t.Fatal("a lazy context under a cancellable parent would miss its cancellation")
	}
	if DeadlineOnly(ctx) {
		t.Fatal("DeadlineOnly true under a cancellable parent")
	}
	cancelParent()
	<-ctx.Done()
}

func TestCancelBeforeAndAfterDone(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	child, cancelChild := WithTimeout(ctx, time.Hour)
	defer cancelChild()
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("after cancel: Err %v, child Err %v", ctx.Err(), child.Err())
	}
	select {
	case <-child.Done(): // made real after its parent's cancel: done at once
	case <-time.After(5 * time.Second):
		t.Fatal("child of a cancelled lazy context not done")
	}

	ctx, cancel = WithTimeout(context.Background(), time.Hour)
	child, cancelChild = WithTimeout(ctx, time.Hour)
	defer cancelChild()
	done := child.Done() // makes both real
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling a real lazy context did not reach its child")
	}
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("child Err %v", child.Err())
	}
}

func TestDeadlinePasses(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// Without Done, Err still turns at the deadline.
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v", ctx.Err())
	}
	<-ctx.Done() // made real after the deadline: closed at once

	ctx, cancel = WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done(): // made real before: the timer closes it
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
}

// TestDerivedRegistersWithoutGoroutine: a context derived from a lazy one finds its cancelCtx
// through Value (as from any context.WithDeadline), and AfterFunc on it fires on cancel.
func TestDerived(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	derived, cancelDerived := context.WithCancel(ctx)
	defer cancelDerived()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(fired) })
	defer stop()
	cancel()
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("derived context not cancelled")
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not fire")
	}
}

func TestLazyAllocs(t *testing.T) {
	parent := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		ctx, cancel := WithTimeout(parent, time.Minute)
		child, cancelChild := WithTimeout(ctx, time.Second)
		if _, ok := child.Deadline(); !ok || child.Err() != nil {
			t.Fatal("no deadline")
		}
		cancelChild()
		cancel()
	})
	if allocs > 4 {
		t.Fatalf("two lazy contexts cost %v allocations; want 4 (each context and its CancelFunc: no timer, no channel)", allocs)
	}
}

func BenchmarkLazyVsContext(b *testing.B) {
	b.Run("lazy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := WithTimeout(context.Background(), time.Minute)
			f, cancelF := WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, _ = f.Deadline()
			cancelF()
			cancel()
		}
	})
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			f, cancelF := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, _ = f.Deadline()
			cancelF()
			cancel()
		}
	})
}

// TestInit: a Ctx made with Init is WithDeadline's context, lazy under a parent that is never
// cancelled and real at once under one that is, ended by Cancel; under a lazy parent nothing
// is allocated but the Ctx (which escapes here as it would in use).
func TestInit(t *testing.T) {
	d := time.Now().Add(time.Hour)
	var c Ctx
	c.Init(context.Background(), d)
	if got, _ := c.Deadline(); !got.Equal(d) || c.real != nil || c.Err() != nil {
		t.Fatalf("Init under Background: deadline %v, real %v, err %v", got, c.real, c.Err())
	}
	c.Cancel()
	if c.Err() != context.Canceled {
		t.Fatalf("after Cancel: %v", c.Err())
	}

	parent, cancel := context.WithCancel(context.Background())
	var r Ctx
	r.Init(parent, d)
	if r.real == nil {
		t.Fatal("Init under a cancellable parent is not the real context at once")
	}
	cancel()
	<-r.Done()
	if r.Err() != context.Canceled {
		t.Fatalf("parent cancelled: %v", r.Err())
	}
	r.Cancel()

	var outer Ctx
	outer.Init(context.Background(), d)
	defer outer.Cancel()
	if n := testing.AllocsPerRun(100, func() {
		var c Ctx
		c.Init(&outer, d.Add(-time.Minute))
		c.Cancel()
	}); n > 1 {
		t.Fatalf("Init and Cancel allocate %v times, want 1 (the Ctx)", n)
	}
}
