package proxy

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// coarsePair is a loopback TCP connection whose near end has coarse deadlines.
func coarsePair(t *testing.T, sw *sweeper) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-accepted
	near = sw.wrap(c)
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// readErr reads one byte and returns the error and when it came.
func readErr(c net.Conn) (error, time.Time) {
	var b [1]byte
	_, err := c.Read(b[:])
	return err, time.Now()
}

func TestCoarseDeadlineFiresFarDeadline(t *testing.T) {
	t.Parallel()
	near, far := coarsePair(t, &sweeper{})
	deadline := time.Now().Add(exactDeadline + 200*time.Millisecond)
	// Should the deadline never fire, the far end hangs up and the read ends without one.
	unblock := time.AfterFunc(10*time.Second, func() { far.Close() })
	defer unblock.Stop()
	if err := near.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	err, at := readErr(near)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if at.Before(deadline) {
		t.Errorf("timed out %v before the deadline", deadline.Sub(at))
	}
}

func TestCoarseDeadlineExtendedBeforeItPasses(t *testing.T) {
	t.Parallel()
	near, far := coarsePair(t, &sweeper{})
	first := time.Now().Add(exactDeadline + 100*time.Millisecond)
	near.SetReadDeadline(first)                //nolint:errcheck
	near.SetReadDeadline(first.Add(time.Hour)) //nolint:errcheck
	go func() {
		time.Sleep(time.Until(first) + 4*sweepTick)
		far.Write([]byte("x")) //nolint:errcheck
	}()
	if err, _ := readErr(near); err != nil {
		t.Fatalf("read after the replaced deadline: %v", err)
	}
}

func TestCoarseDeadlineClearedAfterFiring(t *testing.T) {
	t.Parallel()
	near, far := coarsePair(t, &sweeper{})
	deadline := time.Now().Add(exactDeadline + 50*time.Millisecond)
	near.SetWriteDeadline(deadline) //nolint:errcheck
	// Writes succeed until the sweeper has put the passed deadline on the socket, then fail
	// until a new deadline is set.
	var err error
	for give := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(give); time.Sleep(sweepTick / 5) {
		_, err = near.Write([]byte("x"))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after the deadline: %v, want a deadline error", err)
	}
	if time.Now().Before(deadline) {
		t.Fatalf("timed out before the deadline")
	}
	near.SetWriteDeadline(time.Now().Add(time.Hour)) //nolint:errcheck
	near.SetReadDeadline(time.Time{})                //nolint:errcheck
	if _, err := near.Write([]byte("y")); err != nil {
		t.Fatalf("write under a new deadline: %v", err)
	}
	// The far end gets the x written before the deadline, then the y.
	far.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	var b [1]byte
	for b[0] != 'y' {
		if _, err := far.Read(b[:]); err != nil {
			t.Fatalf("far end: %v before the write under the new deadline", err)
		}
	}
}

func TestCoarseDeadlineNearIsExact(t *testing.T) {
	t.Parallel()
	sw := &sweeper{}
	near, _ := coarsePair(t, sw)
	deadline := time.Now().Add(100 * time.Millisecond)
	near.SetReadDeadline(deadline) //nolint:errcheck
	if err, at := readErr(near); !errors.Is(err, os.ErrDeadlineExceeded) || at.Before(deadline) {
		t.Fatalf("read: %v at %v before the deadline", err, deadline.Sub(at))
	}
	// A near deadline lives on the socket, not with the sweeper.
	if w := near.(*coarseConn).read.want.Load(); w != 0 {
		t.Errorf("sweeper holds %d for a near deadline", w)
	}
}

func TestSweeperStopsWithoutConnections(t *testing.T) {
	t.Parallel()
	sw := &sweeper{}
	near, _ := coarsePair(t, sw)
	near.Close()
	time.Sleep(4 * sweepTick)
	sw.mu.Lock()
	running, n := sw.running, len(sw.conns)
	sw.mu.Unlock()
	if running || n != 0 {
		t.Errorf("after the last close: running=%v, %d connections", running, n)
	}
}

func TestCoarseDeadlineToldApartByTheTick(t *testing.T) {
	var socket []time.Time
	setSocket := func(t time.Time) error { socket = append(socket, t); return nil }
	tick := time.Now()
	f := func(after time.Duration, wantFar bool) {
		t.Helper()
		var d coarseDeadline
		socket = socket[:0]
		dl := tick.Add(after)
		d.set(dl, tick.UnixNano(), setSocket) //nolint:errcheck
		if far := d.want.Load() == dl.UnixNano(); far != wantFar || far == (len(socket) == 1) {
			t.Errorf("%v after the tick: far=%v (socket %v), want far=%v", after, far, socket, wantFar)
		}
	}
	f(100*time.Millisecond, false)
	// Up to sweepTick may have passed since the tick: such a deadline may be under exactDeadline away.
	f(exactDeadline+sweepTick/2, false)
	f(exactDeadline+sweepTick, true)
	f(time.Hour, true)
}
