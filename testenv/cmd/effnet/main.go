// Command effnet installs (when needed) and runs the local image model server in the foreground:
// EfficientNet-Lite0 embeddings and keywords plus RapidOCR table rows behind OpenAI-compatible
// routes, for tests, benchmarks and the demo.
//
//	go run ./testenv/cmd/effnet -port 8000
//
// It prints the server's URL on stdout once /health answers, and stops the server on SIGINT or
// SIGTERM (or, with -exit-on-stdin-eof, when its stdin closes).
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vlproxy/vlproxy/testenv"
)

func main() {
	port := flag.Int("port", 0, "HTTP port on 127.0.0.1; 0 picks a free one")
	urlFile := flag.String("urlfile", "", "write the URL to this file once it is up (removed again on exit)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "also stop when stdin reaches end of file (for a parent process holding a pipe)")
	dir := flag.String("dir", "", "testenv/effnet directory; default: found from the working directory")
	extra := flag.String("server-args", "", "extra server flags, space separated (e.g. \"--accept-any-model --threads 2\")")
	flag.Parse()
	os.Exit(run(*port, *urlFile, *stdinEOF, *dir, strings.Fields(*extra)))
}

func run(port int, urlFile string, stdinEOF bool, dir string, extra []string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	e, err := testenv.StartEffnet(context.Background(), testenv.EffnetOptions{Dir: dir, Port: port, Args: extra, Stderr: os.Stderr})
	if err != nil {
		slog.Error("cannot start the effnet model server", "err", err)
		return 1
	}
	defer e.Stop()
	slog.Info("effnet model server is up", "url", e.URL)
	remove, err := testenv.Announce(e.URL, urlFile)
	if err != nil {
		slog.Error("cannot announce the URL", "err", err)
		return 1
	}
	defer remove()
	eof := testenv.StdinClosed(stdinEOF)
	select {
	case <-sigs:
		slog.Info("signal received: stopping the effnet server")
	case <-eof:
		slog.Info("stdin closed: stopping the effnet server")
	case <-e.Done():
		slog.Error("the effnet server exited on its own", "log_tail", e.LogTail(2048))
		return 1
	}
	if err := e.Stop(); err != nil {
		slog.Error("cannot stop the effnet server cleanly", "err", err)
		return 1
	}
	return 0
}
