package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// PassthroughConfig configures the pass-through suite: closed-loop capacity of every target, then
// open-loop runs at fractions of the weakest capacity, all targets interleaved.
type PassthroughConfig struct {
	// Load carries targets, pids, mix, timeout and seed. Its Rate/Duration/Count are ignored.
	Load LoadConfig `yaml:"load"`
	// Direct names the target without a proxy hop (for added latency per hop). Default: "direct".
	Direct string `yaml:"direct"`
	// Baseline names the proxy that ratios are taken against. Default: "nginx".
	Baseline string `yaml:"baseline"`
	// Levels are the open-loop rates in percent of the weakest capacity. Default: 10,25,50,75.
	Levels []float64 `yaml:"levels"`
	// CapacityDuration is the closed-loop measured time per target. Default: 5s.
	CapacityDuration time.Duration `yaml:"capacity_duration"`
	// LevelDuration is the open-loop measured time per target and level. Default: 5s.
	LevelDuration time.Duration `yaml:"level_duration"`
	// Rounds interleaves the targets in every phase. Default: 2.
	Rounds int `yaml:"rounds"`
	// Concurrency is the number of closed-loop connections for capacity. Default: 64.
	Concurrency int `yaml:"concurrency"`
	// Log receives one line per finished phase. Default: discard.
	Log io.Writer `yaml:"-"`
}

// DefaultPassthroughConfig returns the defaults documented on PassthroughConfig.
func DefaultPassthroughConfig() PassthroughConfig {
	return PassthroughConfig{Load: DefaultLoadConfig(), Direct: "direct", Baseline: "nginx",
		Levels: []float64{10, 25, 50, 75}, CapacityDuration: 5 * time.Second, LevelDuration: 5 * time.Second,
		Rounds: 2, Concurrency: 64}
}

// PassthroughResult holds the reports of every phase.
type PassthroughResult struct {
	Config   PassthroughConfig `json:"-"`
	Capacity *Report           `json:"capacity"`
	Weakest  float64           `json:"weakest_capacity_rps"`
	Levels   []LevelResult     `json:"levels"`
}

// LevelResult is one open-loop phase.
type LevelResult struct {
	Percent float64 `json:"percent"`
	Rate    float64 `json:"rate"`
	Report  *Report `json:"report"`
}

// RunPassthrough runs the suite.
func RunPassthrough(ctx context.Context, cfg PassthroughConfig) (*PassthroughResult, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	res := &PassthroughResult{Config: cfg}
	lc := cfg.Load
	lc.Rate, lc.Concurrency, lc.Duration, lc.Count, lc.Rounds = 0, cfg.Concurrency, cfg.CapacityDuration, 0, cfg.Rounds
	rep, err := Run(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("cannot measure capacity: %w", err)
	}
	res.Capacity = rep
	res.Weakest = math.Inf(1)
	for _, t := range rep.Targets {
		fmt.Fprintf(cfg.Log, "capacity %-10s %8.0f req/s  errors=%d\n", t.Name, t.Achieved, t.Requests-t.OK)
		if t.OK == 0 {
			return nil, fmt.Errorf("target %s answered no request successfully (errors: %s)", t.Name, errorsString(t.Errors))
		}
		res.Weakest = math.Min(res.Weakest, t.Achieved)
	}
	for _, pct := range cfg.Levels {
		lc := cfg.Load
		lc.Rate = math.Round(res.Weakest * pct / 100)
		lc.Duration, lc.Count, lc.Rounds = cfg.LevelDuration, 0, cfg.Rounds
		rep, err := Run(ctx, lc)
		if err != nil {
			return nil, fmt.Errorf("cannot run at %g%% of capacity: %w", pct, err)
		}
		res.Levels = append(res.Levels, LevelResult{Percent: pct, Rate: lc.Rate, Report: rep})
		for _, t := range rep.Targets {
			fmt.Fprintf(cfg.Log, "%3.0f%% %6.0f/s %-10s achieved=%6.0f p50=%s p99=%s cpu=%s µs/req %s\n", pct, lc.Rate, t.Name,
				t.Achieved, FormatMicros(t.Latency.P50), FormatMicros(t.Latency.P99), cpuString(t.OwnCPU()), validity(t))
		}
	}
	return res, nil
}

func findTarget(rep *Report, name string) *TargetResult {
	for _, t := range rep.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Headline is the summary of one proxy against the baseline.
type Headline struct {
	Proxy         string  `json:"proxy"`
	CapacityRatio float64 `json:"capacity_ratio"`
	// CPURatio is the median over levels of proxy CPU/req ÷ baseline CPU/req at equal offered rate.
	CPURatio          float64 `json:"cpu_ratio"`
	CPURatioSaturated float64 `json:"cpu_ratio_saturated"`
}

// Headlines compares every target other than Direct and Baseline with the baseline.
func (r *PassthroughResult) Headlines() []Headline {
	base := findTarget(r.Capacity, r.Config.Baseline)
	if base == nil {
		return nil
	}
	var out []Headline
	for _, t := range r.Capacity.Targets {
		if t.Name == r.Config.Direct || t.Name == r.Config.Baseline {
			continue
		}
		h := Headline{Proxy: t.Name, CapacityRatio: t.Achieved / base.Achieved,
			CPURatioSaturated: t.OwnCPU() / base.OwnCPU()}
		var ratios []float64
		for _, l := range r.Levels {
			p, b := findTarget(l.Report, t.Name), findTarget(l.Report, r.Config.Baseline)
			if v := p.OwnCPU() / b.OwnCPU(); !math.IsNaN(v) && !math.IsInf(v, 0) {
				ratios = append(ratios, v)
			}
		}
		h.CPURatio = median(ratios)
		out = append(out, h)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Machine describes the box a benchmark ran on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Extra     []string
	// How the report was produced and how its processes shared the CPUs; empty: the defaults of
	// an unpinned `make bench-passthrough` (see WriteMarkdown).
	Title, GeneratedBy, Layout string
}

// ThisMachine reads /proc for the CPU count, CPU model and kernel. The count is the machine's, not
// runtime.NumCPU's, which a pinned (taskset) benchmark process would see as its own affinity.
func ThisMachine() Machine {
	m := Machine{GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "processor":
				m.CPUs++
			case k == "model name" && m.CPUModel == "":
				m.CPUModel = strings.TrimSpace(v)
			}
		}
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// WriteMarkdown writes the BENCHMARKS.md section body (without the markers).
func (r *PassthroughResult) WriteMarkdown(w io.Writer, m Machine, commands []string, plot string) {
	cfg := r.Config
	title, by, layout := m.Title, m.GeneratedBy, m.Layout
	if title == "" {
		title = "Pass-through: vlproxy vs nginx vs direct"
	}
	if by == "" {
		by = "make bench-passthrough"
	}
	if layout == "" {
		layout = "Everything (fake ES backend, proxies, load generator) shares the same CPUs on loopback, unpinned."
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "Generated by `%s` on %s. Machine: %d CPUs (%s), kernel %s, %s",
		by, time.Now().UTC().Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPUModel, m.Kernel, m.GoVersion)
	for _, e := range m.Extra {
		fmt.Fprintf(w, ", %s", e)
	}
	fmt.Fprintf(w, ". %s\n\n", layout)
	fmt.Fprintf(w, "Method: `vlbench passthrough` first measures each target's capacity in closed loop (%d connections), then runs open loop at %s of the weakest capacity. Targets run interleaved: %d rounds, order shuffled per round; per target %s of measurement for capacity and %s for each level, split evenly over the rounds, each segment after a %s warm-up. Latency is measured from each request's scheduled send time (no coordinated omission); CPU is utime+stime from /proc of the process and its children, divided by the requests answered. A point whose achieved rate is below 99%% of its target is marked INVALID.\n\n",
		cfg.Concurrency, pctList(cfg.Levels), cfg.Rounds, cfg.CapacityDuration, cfg.LevelDuration, cfg.Load.Warmup)
	if len(commands) > 0 {
		fmt.Fprintf(w, "```\n%s\n```\n\n", strings.Join(commands, "\n"))
	}
	if hs := r.Headlines(); len(hs) > 0 {
		fmt.Fprintf(w, "**Headline** (targets: CPU/req ≤ 1.2× %s, capacity ≥ 0.9× %s):\n\n", cfg.Baseline, cfg.Baseline)
		fmt.Fprintf(w, "| proxy | capacity ÷ %s | CPU/req ÷ %s, equal offered rate (median of levels) | CPU/req ÷ %s, saturated |\n|---|---:|---:|---:|\n", cfg.Baseline, cfg.Baseline, cfg.Baseline)
		for _, h := range hs {
			fmt.Fprintf(w, "| %s | %.2f %s | %.2f %s | %.2f |\n", h.Proxy, h.CapacityRatio, verdict(h.CapacityRatio >= 0.9),
				h.CPURatio, verdict(h.CPURatio <= 1.2), h.CPURatioSaturated)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "### Capacity (closed loop, %d connections)\n\n", cfg.Concurrency)
	fmt.Fprintf(w, "| target | req/s | ÷ %s | errors | p50 | p99 | CPU µs/req (own) | other CPU µs/req | rounds req/s |\n|---|---:|---:|---|---:|---:|---:|---|---|\n", cfg.Baseline)
	base := findTarget(r.Capacity, cfg.Baseline)
	for _, t := range r.Capacity.Targets {
		br := "-"
		if base != nil {
			br = ratio(t.Achieved, base.Achieved)
		}
		var rounds []string
		for _, s := range t.Segments {
			rounds = append(rounds, fmt.Sprintf("%.0f", s.Achieved))
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", t.Name, t.Achieved, br, errorsString(t.Errors),
			FormatMicros(t.Latency.P50), FormatMicros(t.Latency.P99), cpuString(t.OwnCPU()), otherCPU(r.Capacity, t), strings.Join(rounds, ", "))
	}
	fmt.Fprintf(w, "\nWeakest capacity: %.0f req/s.\n\n", r.Weakest)
	fmt.Fprintf(w, "### Open loop at equal offered rates\n\n")
	fmt.Fprintf(w, "| load | rate | target | achieved | valid | errors | p50 | p99 | p99.9 | Δp50 vs %s | Δp99 vs %s | CPU µs/req | ÷ %s | other CPU µs/req |\n|---:|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n", cfg.Direct, cfg.Direct, cfg.Baseline)
	for _, l := range r.Levels {
		direct := findTarget(l.Report, cfg.Direct)
		b := findTarget(l.Report, cfg.Baseline)
		for _, t := range l.Report.Targets {
			d50, d99 := "-", "-"
			if direct != nil && t != direct {
				d50 = signedMicros(t.Latency.P50 - direct.Latency.P50)
				d99 = signedMicros(t.Latency.P99 - direct.Latency.P99)
			}
			br := "-"
			if b != nil {
				br = ratio(t.OwnCPU(), b.OwnCPU())
			}
			fmt.Fprintf(w, "| %.0f%% | %.0f | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l.Percent, l.Rate,
				t.Name, t.Achieved, validity(t), errorsString(t.Errors), FormatMicros(t.Latency.P50),
				FormatMicros(t.Latency.P99), FormatMicros(t.Latency.P999), d50, d99, cpuString(t.OwnCPU()), br, otherCPU(l.Report, t))
		}
	}
	fmt.Fprintln(w)
	if plot != "" {
		fmt.Fprintf(w, "![latency by percentile at 50%% load](%s)\n\n", plot)
	}
	fmt.Fprintf(w, "Noise: on this shared 2-core VM, identical runs differ by ±15–30%% in req/s and ±5–10%% in CPU µs/req (reference/benchmarking.md §5); compare ratios from the same run, not absolute figures across runs.\n")
}

func verdict(ok bool) string {
	if ok {
		return "(meets target)"
	}
	return "(MISSES target)"
}

func pctList(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%g%%", x))
	}
	return strings.Join(s, "/")
}

func signedMicros(us float64) string {
	if us < 0 {
		return "−" + FormatMicros(-us)
	}
	return "+" + FormatMicros(us)
}

// otherCPU lists the CPU of measured processes that are not targets themselves (backend, vlbench).
func otherCPU(rep *Report, t *TargetResult) string {
	var parts []string
	for _, k := range sortedKeys(t.CPUPerReq) {
		if findTarget(rep, k) == nil {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, t.CPUPerReq[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// ReplaceSection replaces the text between "<!-- bench:NAME -->" and "<!-- /bench:NAME -->" in
// the Markdown file path (creating the file, or appending the section, when absent).
func ReplaceSection(path, name, body string) error {
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n\nEach section is written by its own script under bench/scripts; `make bench` regenerates all of them.\n"
	}
	section := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + section + doc[j+len(end):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("cannot update %s: unbalanced markers for section %q", path, name)
	default:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
