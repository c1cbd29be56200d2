package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vlproxy/vlproxy/bench"
)

type targetFlags struct {
	raw []string
}

func (t *targetFlags) String() string     { return strings.Join(t.raw, ",") }
func (t *targetFlags) Set(s string) error { t.raw = append(t.raw, s); return nil }

type pidFlags map[string]int

func (p pidFlags) String() string { return fmt.Sprint(map[string]int(p)) }
func (p pidFlags) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	pid, err := strconv.Atoi(v)
	if !ok || name == "" || err != nil || pid <= 0 {
		return fmt.Errorf("want name=PID, got %q", s)
	}
	p[name] = pid
	return nil
}

// loadFlags are shared by load and passthrough.
type loadFlags struct {
	targets     targetFlags
	pids        pidFlags
	mix         string
	allowRemote bool
	timeout     time.Duration
	seed        uint64
	quiet       bool
}

func (l *loadFlags) register(fs *flag.FlagSet) {
	l.pids = pidFlags{}
	fs.Var(&l.targets, "target", "name=URL of a system under test (repeatable; ratios are against the first)")
	fs.Var(l.pids, "pid", "name=PID: measure this process's CPU (with children) per request (repeatable; name a target to get its own CPU column)")
	fs.StringVar(&l.mix, "mix", "", "NDJSON request mix file (default: one small POST /bench/_search)")
	fs.BoolVar(&l.allowRemote, "allow-remote", false, "allow targets that are not on a loopback address")
	fs.DurationVar(&l.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.Uint64Var(&l.seed, "seed", 1, "seed for request selection and target order")
	fs.BoolVar(&l.quiet, "quiet", false, "no progress bar")
}

func (l *loadFlags) config() (bench.LoadConfig, error) {
	cfg := bench.DefaultLoadConfig()
	if len(l.targets.raw) == 0 {
		return cfg, errors.New("no targets: give at least one -target name=URL")
	}
	for _, s := range l.targets.raw {
		t, err := bench.ParseTarget(s, l.allowRemote)
		if err != nil {
			return cfg, err
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	names := map[string]bool{}
	for _, t := range cfg.Targets {
		names[t.Name] = true
	}
	if l.mix != "" {
		m, err := bench.LoadMix(l.mix)
		if err != nil {
			return cfg, err
		}
		cfg.Mix = m
	}
	cfg.Pids = l.pids
	cfg.Timeout = l.timeout
	cfg.Seed = l.seed
	if !l.quiet && isTerminal(os.Stderr) {
		cfg.Progress = progressBar
	}
	return cfg, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progressBar(p bench.Progress) {
	const width = 30
	n := int(p.Fraction * width)
	phase := "measure"
	if p.Warmup {
		phase = "warm-up"
	}
	fmt.Fprintf(os.Stderr, "\r\033[K%-12s round %d/%d %s [%s%s] %3.0f%% %7.0f req/s err=%d", p.Target, p.Round, p.Rounds, phase,
		strings.Repeat("#", n), strings.Repeat("-", width-n), p.Fraction*100, p.Rate, p.Errors)
	if p.Fraction >= 1 {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func writeFile(path string, write func(f *os.File) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return f.Close()
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var lf loadFlags
	lf.register(fs)
	def := bench.DefaultLoadConfig()
	rate := fs.Float64("rate", 0, "open-loop arrival rate per target in req/s (0: closed loop)")
	closed := fs.Bool("closed", false, "closed loop: -concurrency connections send back to back (ignores -rate)")
	conc := fs.Int("concurrency", def.Concurrency, "closed-loop connections")
	workers := fs.Int("workers", def.Workers, "open-loop maximum requests in flight")
	warmup := fs.Duration("warmup", def.Warmup, "warm-up before each measured segment (not recorded)")
	dur := fs.Duration("duration", def.Duration, "measured time per target (split over -rounds)")
	count := fs.Int("count", 0, "measure this many requests per target instead of -duration")
	rounds := fs.Int("rounds", def.Rounds, "interleaved rounds (targets in shuffled order each round)")
	jsonOut := fs.String("json", "", "write the JSON report to this file ('-' for stdout)")
	mdOut := fs.String("markdown", "", "write a Markdown report to this file")
	svgOut := fs.String("svg", "", "write an SVG latency-percentile plot to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := lf.config()
	if err != nil {
		return err
	}
	cfg.Rate, cfg.Concurrency, cfg.Workers = *rate, *conc, *workers
	if *closed {
		cfg.Rate = 0
	}
	cfg.Warmup, cfg.Duration, cfg.Count, cfg.Rounds = *warmup, *dur, *count, *rounds
	if *count > 0 {
		cfg.Duration = 0
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut == "-" {
		return bench.WriteJSON(os.Stdout, rep)
	}
	if err := bench.WriteText(os.Stdout, rep); err != nil {
		return err
	}
	if err := writeFile(*jsonOut, func(f *os.File) error { return bench.WriteJSON(f, rep) }); err != nil {
		return err
	}
	if err := writeFile(*mdOut, func(f *os.File) error { return bench.WriteMarkdown(f, rep) }); err != nil {
		return err
	}
	title := fmt.Sprintf("latency by percentile (%s loop", rep.Mode)
	if rep.Mode == "open" {
		title += fmt.Sprintf(", %g req/s", rep.Rate)
	}
	return writeFile(*svgOut, func(f *os.File) error { return bench.WriteSVG(f, title+")", bench.SeriesOf(rep, "")) })
}
