package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Environment variables read by Main and URL.
const (
	// EnvURL names an external Elasticsearch or OpenSearch to test against instead of starting
	// a node, e.g. "http://127.0.0.1:9200". `make test` sets it so that packages share one node.
	EnvURL = "VLPROXY_TEST_ES_URL"
	// EnvRequire, when "1", turns a missing build into a failure instead of skipped tests.
	// CI=true does the same.
	EnvRequire = "REQUIRE_OPENSEARCH"
)

// shared is the package-wide node of a test binary, started on first use by URL.
var shared struct {
	startMu  sync.Mutex // held while a node starts (for up to StartTimeout)
	mu       sync.Mutex // guards the fields below
	inMain   bool
	external string
	node     *Node
	err      error // sticky start error
	started  bool
}

// Main runs the tests of a package that uses URL; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// With $VLPROXY_TEST_ES_URL set, tests use that cluster. Otherwise the first URL call starts one
// node for the whole package, and Main stops it after m.Run, also on SIGINT/SIGTERM. If the test
// binary dies some other way (a test panic, SIGKILL) the JVM still exits: its stdin closes.
//
// When the launcher is not built, tests calling URL skip, unless CI=true or
// REQUIRE_OPENSEARCH=1: then Main fails before running any test.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	external := strings.TrimRight(os.Getenv(EnvURL), "/")
	shared.external = external
	shared.mu.Unlock()
	if external == "" && required() {
		opts, err := Options{}.withDefaults()
		if err == nil {
			err = checkBuilt(opts.Dir)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: OpenSearch is required here (CI=true or %s=1) but cannot be used: %v\n", EnvRequire, err)
			return 1
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "testenv: %v: stopping the OpenSearch node\n", s)
		stopShared()
		os.Exit(1)
	}()
	defer func() {
		signal.Stop(sigs)
		close(sigs)
		stopShared()
	}()
	return m.Run()
}

// URL returns the base URL (no trailing slash) of the cluster the tests run against, starting
// the package's node on first use. It skips the test when no node can be built here (see Main)
// and fails it when the node cannot start.
func URL(t testing.TB) string {
	t.Helper()
	shared.startMu.Lock()
	defer shared.startMu.Unlock()
	shared.mu.Lock()
	external, inMain, started := shared.external, shared.inMain, shared.started
	shared.mu.Unlock()
	if external != "" {
		return external
	}
	if !inMain {
		if u := strings.TrimRight(os.Getenv(EnvURL), "/"); u != "" {
			return u
		}
		t.Fatalf("testenv.URL needs a TestMain calling testenv.Main (or $%s)", EnvURL)
	}
	if !started {
		n, err := Start(context.Background(), Options{})
		shared.mu.Lock()
		shared.started, shared.node, shared.err = true, n, err
		shared.mu.Unlock()
	}
	shared.mu.Lock()
	n, err := shared.node, shared.err
	shared.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrNotBuilt) && !required() {
			t.Skipf("testenv: %v; or set %s to an external cluster", err, EnvURL)
		}
		t.Fatalf("testenv: %v", err)
	}
	if n == nil {
		t.Fatalf("testenv: the OpenSearch node was already stopped")
	}
	select {
	case <-n.Done():
		// Say so once here rather than as a connection error in every later test.
		t.Fatalf("testenv: the package's OpenSearch node has died; node log tail:\n%s", n.LogTail(4096))
	default:
	}
	return n.URL
}

func stopShared() {
	shared.mu.Lock()
	n := shared.node
	shared.node = nil
	shared.mu.Unlock()
	if n != nil {
		if err := n.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
}

func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv(EnvRequire) == "1"
}
