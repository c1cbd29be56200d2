package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/vlproxy/vlproxy/bench"
)

func runFakeES(args []string) error {
	fs := flag.NewFlagSet("fake-es", flag.ContinueOnError)
	def := bench.DefaultFakeESConfig()
	listen := fs.String("listen", "127.0.0.1:9200", "address to listen on (port 0 picks a free port; see -addrfile)")
	addrFile := fs.String("addrfile", "", "write the bound address (host:port) to this file once listening")
	cfg := def
	fs.IntVar(&cfg.Hits, "hits", def.Hits, "hits per _search response")
	fs.IntVar(&cfg.SourceBytes, "source-bytes", def.SourceBytes, "bytes of _source per hit")
	fs.StringVar(&cfg.Index, "index", def.Index, "index name in hits and bulk items")
	fs.DurationVar(&cfg.Delay, "delay", 0, "sleep before every response")
	fs.DurationVar(&cfg.SlowDelay, "slow-delay", 0, "sleep on every -slow-every-th response instead of -delay")
	fs.IntVar(&cfg.SlowEvery, "slow-every", 0, "1 in N responses sleeps -slow-delay (0: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := bench.NewFakeES(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on -listen %s: %w", *listen, err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("cannot write -addrfile: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "fake-es listening on http://%s (hits=%d source-bytes=%d)\n", ln.Addr(), cfg.Hits, cfg.SourceBytes)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; _ = f.Shutdown() }()
	return f.Serve(ln)
}
