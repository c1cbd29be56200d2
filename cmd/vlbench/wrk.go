package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/vlproxy/vlproxy/bench"
)

// runWrk drives Debian's wrk (C, closed loop) against every target for three scenarios: a
// document GET, a _search whose body differs on every request (a result-cache miss each time)
// and the same _search repeated (a hit after the first), and writes the tables and the issue's
// targets as Markdown.
func runWrk(args []string) error {
	fs := flag.NewFlagSet("wrk", flag.ContinueOnError)
	var targets targetFlags
	pids := pidFlags{}
	fs.Var(&targets, "target", "name=URL of a system under test (repeatable, report order)")
	fs.Var(pids, "pid", "name=PID whose CPU (with children) is charged to the target of that name (repeatable)")
	wrkBin := fs.String("wrk", "wrk", "wrk binary")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	dur := fs.Duration("duration", 5e9, "measured time per target, scenario and round (whole seconds)")
	warm := fs.Duration("warmup", 1e9, "unmeasured run of every pair before the first round")
	conns := fs.Int("connections", 64, "wrk -c")
	index := fs.String("index", "bench", "index in the request paths")
	baselines := fs.String("baselines", "nginx,fasthttp-bare", "targets that CPU ratios are taken against")
	searchTargets := fs.String("search-targets", "", "targets of the _search scenarios (default: all)")
	proxy := fs.String("proxy", "vlproxy", "the target in its default configuration (result cache on), for the targets table")
	noCache := fs.String("proxy-nocache", "vlproxy-nocache", "the target with the result cache off, for the targets table")
	floor := fs.String("floor", "fasthttp-bare", "the bare fasthttp proxy, for the targets table")
	nginx := fs.String("nginx", "nginx", "nginx, for the targets table")
	out := fs.String("markdown", "", "write the Markdown here (default: stdout)")
	jsonOut := fs.String("json", "", "write every run as JSON to this file")
	writeScripts := fs.String("write-scripts", "", "only write the scenarios' Lua scripts to this directory (NAME.lua; a distinct body's script takes its first counter value after --) and exit, for other tools driving wrk")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var st []string
	if *searchTargets != "" {
		st = strings.Split(*searchTargets, ",")
	}
	scenarios := bench.DefaultWrkScenarios(*index, st)
	if *writeScripts != "" {
		_, err := bench.WriteWrkScripts(*writeScripts, scenarios)
		return err
	}
	cfg := bench.WrkConfig{Wrk: *wrkBin, Pids: pids, Rounds: *rounds, Duration: *dur, Warmup: *warm,
		Connections: *conns, Log: os.Stderr}
	for _, s := range targets.raw {
		t, err := bench.ParseTarget(s, false)
		if err != nil {
			return err
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	if len(cfg.Targets) == 0 {
		return fmt.Errorf("no targets: give at least one -target name=URL")
	}
	for _, b := range strings.Split(*baselines, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Baselines = append(cfg.Baselines, b)
		}
	}
	cfg.Scenarios = scenarios
	ctx, cancel := signalContext()
	defer cancel()
	res, err := bench.RunWrk(ctx, cfg)
	if err != nil {
		return err
	}
	if err := writeFile(*jsonOut, func(f *os.File) error { return bench.WriteJSONValue(f, res) }); err != nil {
		return err
	}
	var b bytes.Buffer
	res.WriteMarkdown(&b)
	b.WriteString("\n")
	res.WriteTargets(&b, bench.WrkRoles{Proxy: *proxy, NoCache: *noCache, Floor: *floor, Nginx: *nginx})
	if *out == "" {
		_, err := os.Stdout.Write(b.Bytes())
		return err
	}
	return os.WriteFile(*out, b.Bytes(), 0o644)
}
