package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vlproxy/vlproxy/bench"
)

func runPassthrough(args []string) error {
	fs := flag.NewFlagSet("passthrough", flag.ContinueOnError)
	var lf loadFlags
	lf.register(fs)
	def := bench.DefaultPassthroughConfig()
	direct := fs.String("direct", def.Direct, "name of the target without a proxy hop")
	baseline := fs.String("baseline", def.Baseline, "name of the proxy that ratios are taken against")
	levels := fs.String("levels", "10,25,50,75", "open-loop rates in percent of the weakest capacity")
	capDur := fs.Duration("capacity-duration", def.CapacityDuration, "closed-loop measured time per target")
	levelDur := fs.Duration("level-duration", def.LevelDuration, "open-loop measured time per target and level")
	rounds := fs.Int("rounds", def.Rounds, "interleaved rounds per phase")
	conc := fs.Int("concurrency", def.Concurrency, "closed-loop connections for capacity")
	workers := fs.Int("workers", 512, "open-loop maximum requests in flight")
	out := fs.String("out", "BENCHMARKS.md", "Markdown file whose section is replaced")
	section := fs.String("section", "passthrough", "section name between <!-- bench:NAME --> markers")
	svg := fs.String("svg", "", "write the latency-percentile plot at 50% load to this file (linked from the section)")
	svgLink := fs.String("svg-link", "", "path of the plot as linked from the Markdown file (default: -svg)")
	jsonOut := fs.String("json", "", "write all reports as JSON to this file")
	title := fs.String("title", "", "heading of the section (default: Pass-through: vlproxy vs nginx vs direct)")
	generatedBy := fs.String("generated-by", "", "command named as the section's origin (default: make bench-passthrough)")
	layout := fs.String("layout", "", "sentence saying how the processes shared the CPUs (default: all unpinned)")
	var extra, cmds multiFlag
	fs.Var(&extra, "machine", "extra machine/version note for the report, e.g. 'nginx 1.22.1' (repeatable)")
	fs.Var(&cmds, "command", "command line to show in the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lc, err := lf.config()
	if err != nil {
		return err
	}
	lc.Workers = *workers
	cfg := def
	cfg.Load, cfg.Direct, cfg.Baseline, cfg.CapacityDuration, cfg.LevelDuration = lc, *direct, *baseline, *capDur, *levelDur
	cfg.Rounds, cfg.Concurrency, cfg.Log, cfg.Levels = *rounds, *conc, os.Stderr, nil
	for _, s := range strings.Split(*levels, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 || v > 100 {
			return fmt.Errorf("-levels: %q is not a percentage in (0,100]", s)
		}
		cfg.Levels = append(cfg.Levels, v)
	}
	ctx, cancel := signalContext()
	defer cancel()
	res, err := bench.RunPassthrough(ctx, cfg)
	if err != nil {
		return err
	}
	if err := writeFile(*jsonOut, func(f *os.File) error { return bench.WriteJSONValue(f, res) }); err != nil {
		return err
	}
	link := *svgLink
	if link == "" {
		link = *svg
	}
	if *svg != "" && len(res.Levels) > 0 {
		l := res.Levels[len(res.Levels)/2]
		for _, x := range res.Levels {
			if x.Percent == 50 {
				l = x
			}
		}
		title := fmt.Sprintf("pass-through latency by percentile, open loop %.0f req/s (%g%% of weakest capacity)", l.Rate, l.Percent)
		if err := writeFile(*svg, func(f *os.File) error { return bench.WriteSVG(f, title, bench.SeriesOf(l.Report, "")) }); err != nil {
			return err
		}
	}
	m := bench.ThisMachine()
	m.Extra = extra
	m.Title, m.GeneratedBy, m.Layout = *title, *generatedBy, *layout
	var b bytes.Buffer
	res.WriteMarkdown(&b, m, cmds, link)
	os.Stdout.Write(b.Bytes())
	if *out == "" {
		return nil
	}
	return bench.ReplaceSection(*out, *section, b.String())
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
