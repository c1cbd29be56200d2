// Command opensearch runs one OpenSearch node in the foreground for the demo, benchmarks and
// `make test` (which exports its URL as VLPROXY_TEST_ES_URL so that test packages share it).
//
//	go run ./testenv/cmd/opensearch -port 9200 -profile bench -urlfile /tmp/os.url
//
// It prints the node's URL on stdout once the cluster is yellow, and stops the node on SIGINT or
// SIGTERM (or, with -exit-on-stdin-eof, when its stdin closes). Build the launcher first with
// testenv/build.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vlproxy/vlproxy/testenv"
)

func main() {
	port := flag.Int("port", 9200, "HTTP port on 127.0.0.1; 0 picks a free one")
	profile := flag.String("profile", string(testenv.ProfileTest), "JVM profile: test (512 MiB, fast start-up) or bench (1 GiB, full JIT)")
	urlFile := flag.String("urlfile", "", "write the node URL to this file once it is up (removed again on exit)")
	logPath := flag.String("log", "", "node log file; default: node.log in the node's temporary home, removed on exit")
	noKNN := flag.Bool("no-knn", false, "leave the k-NN plugin out")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "also stop the node when stdin reaches end of file (for a parent process holding a pipe)")
	dir := flag.String("dir", "", "launcher module with target/ built by testenv/build.sh; default: found from the working directory")
	flag.Parse()
	os.Exit(run(*port, testenv.Profile(*profile), *urlFile, *logPath, *noKNN, *stdinEOF, *dir))
}

func run(port int, profile testenv.Profile, urlFile, logPath string, noKNN, stdinEOF bool, dir string) int {
	// Catch signals before starting, so that Ctrl-C during start-up still stops the JVM cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
	}()

	n, err := testenv.Start(ctx, testenv.Options{Dir: dir, HTTPPort: port, Profile: profile, NoKNN: noKNN, LogPath: logPath})
	if err != nil {
		if errors.Is(err, testenv.ErrNotBuilt) {
			slog.Error("cannot start OpenSearch: build the launcher first with `bash testenv/build.sh`", "err", err)
		} else {
			slog.Error("cannot start OpenSearch", "err", err)
		}
		return 1
	}
	defer n.Stop()
	slog.Info("OpenSearch is up", "url", n.URL, "pid", n.PID(), "startup", n.StartupTime, "log", n.LogPath, "profile", profile)
	remove, err := testenv.Announce(n.URL, urlFile)
	if err != nil {
		slog.Error("cannot announce the URL", "err", err)
		return 1
	}
	defer remove()
	eof := testenv.StdinClosed(stdinEOF)
	select {
	case <-ctx.Done():
		slog.Info("signal received: stopping OpenSearch")
	case <-eof:
		slog.Info("stdin closed: stopping OpenSearch")
	case <-n.Done():
		slog.Error("the OpenSearch JVM exited on its own", "log_tail", n.LogTail(2048))
		return 1
	}
	if err := n.Stop(); err != nil {
		slog.Error("cannot stop OpenSearch cleanly", "err", err)
		return 1
	}
	return 0
}
