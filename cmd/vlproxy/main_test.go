package main

import (
	"net"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestSIGTERMDrains runs the binary's main loop, waits until it serves, sends SIGTERM to the process
// (caught by run's handler) and expects a clean exit.
func TestSIGTERMDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("VLPROXY_UPSTREAM", "http://127.0.0.1:1")
	t.Setenv("VLPROXY_LOG_LEVEL", "error")
	exit := make(chan int, 1)
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	// No result cache: its alias refresh would contact the dead upstream and eject it.
	go func() {
		exit <- run([]string{"-listen", addr, "-drain-timeout", "5s", "-health-check-interval", "0", "-result-cache-size", "0",
			"-memory-limit", "3GiB"})
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body, err := fasthttp.Get(nil, "http://"+addr+"/_vlproxy/health")
		if err == nil {
			// 503 is health's answer once the dead upstream has been ejected (any request to it
			// does that); either way the process serves.
			if status != 200 && status != 503 || !strings.Contains(string(body), `"upstreams":[{"url":"http://127.0.0.1:1"`) {
				t.Fatalf("health status %d: %s", status, body)
			}
			// The soft memory limit is set, and health shows it with its source.
			if !strings.Contains(string(body), `"memory":{"up":true,"state":{"limit_bytes":3221225472,"source":"flag"`) ||
				debug.SetMemoryLimit(-1) != 3<<30 {
				t.Fatalf("memory limit: runtime %d, health %s", debug.SetMemoryLimit(-1), body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vlproxy never served: %s", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vlproxy did not stop on SIGTERM")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after SIGTERM")
	}
}
