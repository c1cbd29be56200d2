// Command vlproxy serves the vlproxy proxy: it reads flags, env and the config file, builds the
// logger and the server, and turns SIGTERM/SIGINT into a graceful drain. All logic lives in proxy/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vlproxy/vlproxy/internal/memlimit"
	"github.com/vlproxy/vlproxy/proxy"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := loadConfig(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vlproxy:", err)
		return 2
	}
	level, _ := proxy.ParseLogLevel(cfg.Proxy.LogLevel) // validated by loadConfig
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	mem, err := memlimit.Apply(cfg.MemoryLimit, os.Getenv, os.DirFS("/"), parseBytes)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 2
	}
	logMemoryLimit(log, mem)

	opts, closeModels, err := wire(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	defer closeModels()
	opts = append(opts, proxy.WithComponent(proxy.Component{Name: "memory",
		Health: func() (any, bool) { return mem, true }}))
	srv, err := proxy.New(cfg.Proxy, log, opts...)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		if err != nil {
			log.Error("cannot serve", "error", err.Error())
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	stop()
	dctx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Error("drain incomplete", "error", err.Error())
		return 1
	}
	return 0
}

// logMemoryLimit says at start-up which soft memory limit the process runs under and why.
func logMemoryLimit(log *slog.Logger, d memlimit.Decision) {
	attrs := []any{"limit_bytes", d.Limit, "source", d.Source, "cgroup_limit_bytes", d.Cgroup}
	if d.CgroupFile != "" {
		attrs = append(attrs, "cgroup_file", d.CgroupFile)
	}
	if d.Note != "" {
		attrs = append(attrs, "note", d.Note)
	}
	if d.Limit > 0 {
		attrs = append(attrs, "limit", proxy.ByteSize(d.Limit).String())
	}
	log.Info("memory limit", attrs...)
}
