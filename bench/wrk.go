package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WrkScenario is one kind of request that every target gets from wrk.
type WrkScenario struct {
	// Name labels the scenario in the report ("doc-get", "search-miss", …).
	Name string
	// Method and Path of every request (Path may carry a query string).
	Method, Path string
	// Body is sent with every request. With Distinct set, "%d" in it is replaced per request by a
	// counter that no other run of the benchmark repeats, so a result cache misses every time.
	Body     string
	Distinct bool
	// Targets names the targets this scenario runs against (all when empty).
	Targets []string
}

// WrkConfig configures RunWrk: closed-loop runs of Debian's wrk (a C load generator much lighter
// than vlbench's Go client), every scenario against every target, interleaved over rounds, CPU of
// each target process read from /proc before and after each run.
type WrkConfig struct {
	Wrk         string            // path of the wrk binary. Default: "wrk".
	Targets     []Target          // name=URL, in report order
	Pids        map[string]int    // target name → pid whose CPU (with children) is charged to it
	Scenarios   []WrkScenario     // in report order
	Rounds      int               // interleaved rounds; order shuffled per round. Default: 3.
	Duration    time.Duration     // measured time per target, scenario and round. Default: 5s.
	Warmup      time.Duration     // unmeasured run before the first round of each pair. Default: 1s.
	Connections int               // wrk -c. Default: 64.
	Baselines   []string          // targets that ratios are taken against, e.g. nginx, fasthttp-bare
	Log         io.Writer         // one line per run. Default: discard.
	Env         map[string]string // extra environment for wrk (unused by default)
	Seed        uint64            // shuffles rounds and seeds distinct bodies. Default: time-based.
}

// WrkRun is the outcome of one wrk run.
type WrkRun struct {
	Requests int64         `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Errors   int64         `json:"errors"` // socket errors + non-2xx/3xx
	P99      time.Duration `json:"p99_ns"`
	CPU      time.Duration `json:"cpu_ns"` // of the target's pid, during the run
}

// RPS is requests per second of the run.
func (r WrkRun) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// CPUPerReq is the target's CPU time per request in microseconds (0 without a pid).
func (r WrkRun) CPUPerReq() float64 {
	if r.Requests <= 0 {
		return 0
	}
	return float64(r.CPU.Microseconds()) / float64(r.Requests)
}

// WrkCell holds every round of one scenario × target.
type WrkCell struct {
	Scenario string   `json:"scenario"`
	Target   string   `json:"target"`
	Runs     []WrkRun `json:"runs"`
}

// medians returns the median rps and CPU µs/req over the rounds.
func (c *WrkCell) medians() (rps, cpu float64) {
	var a, b []float64
	for _, r := range c.Runs {
		a = append(a, r.RPS())
		b = append(b, r.CPUPerReq())
	}
	return median(a), median(b)
}

func (c *WrkCell) cpuRange() (lo, hi float64) {
	for i, r := range c.Runs {
		v := r.CPUPerReq()
		if i == 0 || v < lo {
			lo = v
		}
		if i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

func (c *WrkCell) errors() int64 {
	var n int64
	for _, r := range c.Runs {
		n += r.Errors
	}
	return n
}

// WrkResult is every cell of a RunWrk.
type WrkResult struct {
	Config  WrkConfig  `json:"-"`
	Version string     `json:"wrk_version"`
	Cells   []*WrkCell `json:"cells"`
}

// Cell returns the cell of scenario × target, or nil.
func (r *WrkResult) Cell(scenario, target string) *WrkCell {
	for _, c := range r.Cells {
		if c.Scenario == scenario && c.Target == target {
			return c
		}
	}
	return nil
}

// RunWrk runs every scenario against its targets, Rounds times, in an order shuffled per round.
func RunWrk(ctx context.Context, cfg WrkConfig) (*WrkResult, error) {
	if cfg.Wrk == "" {
		cfg.Wrk = "wrk"
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	}
	if cfg.Connections <= 0 {
		cfg.Connections = 64
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	dir, err := os.MkdirTemp("", "vlbench-wrk")
	if err != nil {
		return nil, fmt.Errorf("cannot create a directory for wrk scripts: %w", err)
	}
	defer os.RemoveAll(dir)
	res := &WrkResult{Config: cfg, Version: wrkVersion(cfg.Wrk)}
	type pair struct {
		sc     int
		target Target
		cell   *WrkCell
	}
	var pairs []pair
	scripts, err := WriteWrkScripts(dir, cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	for i, sc := range cfg.Scenarios {
		for _, t := range cfg.Targets {
			if len(sc.Targets) > 0 && !contains(sc.Targets, t.Name) {
				continue
			}
			c := &WrkCell{Scenario: sc.Name, Target: t.Name}
			res.Cells = append(res.Cells, c)
			pairs = append(pairs, pair{i, t, c})
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	run := 0
	for round := 0; round < cfg.Rounds; round++ {
		order := rng.Perm(len(pairs))
		for _, k := range order {
			p := pairs[k]
			if round == 0 && cfg.Warmup > 0 {
				run++
				if _, err := runWrkOnce(ctx, cfg, scripts[p.sc], p.target, cfg.Warmup, cfg.Seed+uint64(run)*1e9, 0); err != nil {
					return nil, err
				}
			}
			run++
			r, err := runWrkOnce(ctx, cfg, scripts[p.sc], p.target, cfg.Duration, cfg.Seed+uint64(run)*1e9, cfg.Pids[p.target.Name])
			if err != nil {
				return nil, err
			}
			p.cell.Runs = append(p.cell.Runs, r)
			fmt.Fprintf(cfg.Log, "wrk round %d %-12s %-16s %8.0f req/s  cpu %6.1f µs/req  errors=%d\n",
				round+1, cfg.Scenarios[p.sc].Name, p.target.Name, r.RPS(), r.CPUPerReq(), r.Errors)
		}
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WriteWrkScripts writes each scenario's Lua script to dir as NAME.lua and returns the paths, in
// scenario order. A distinct body's script takes the first number of its counter as its argument
// (wrk … -- N).
func WriteWrkScripts(dir string, scenarios []WrkScenario) ([]string, error) {
	paths := make([]string, len(scenarios))
	for i, sc := range scenarios {
		paths[i] = filepath.Join(dir, sc.Name+".lua")
		if err := os.WriteFile(paths[i], []byte(wrkScript(sc)), 0o644); err != nil {
			return nil, fmt.Errorf("cannot write the wrk script: %w", err)
		}
	}
	return paths, nil
}

// wrkScript returns the Lua script of a scenario. A distinct body numbers its requests from a
// per-run offset passed as the script's argument.
func wrkScript(sc WrkScenario) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %s\nwrk.path = %s\n", q(sc.Method), q(sc.Path))
	if sc.Body != "" {
		b.WriteString("wrk.headers[\"Content-Type\"] = \"application/json\"\n")
	}
	if !sc.Distinct {
		fmt.Fprintf(&b, "wrk.body = %s\n", q(sc.Body))
		return b.String()
	}
	// Lua's string.format understands %d like Go; %% in the body would be a literal percent.
	fmt.Fprintf(&b, `local n = 0
function init(args) n = tonumber(args[1]) or 0 end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(%s, n))
end
`, q(sc.Body))
	return b.String()
}

func runWrkOnce(ctx context.Context, cfg WrkConfig, script string, t Target, d time.Duration, seed uint64, pid int) (WrkRun, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t1", "-c" + strconv.Itoa(cfg.Connections), "-d" + strconv.Itoa(secs) + "s", "--latency",
		"-s", script, t.URL, "--", strconv.FormatUint(seed%1e15, 10)}
	cmd := exec.CommandContext(ctx, cfg.Wrk, args...)
	cmd.Env = os.Environ()
	for k, v := range cfg.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var before time.Duration
	if pid > 0 {
		var err error
		if before, err = ProcCPU(pid); err != nil {
			return WrkRun{}, err
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return WrkRun{}, fmt.Errorf("cannot run %s %s: %w\n%s", cfg.Wrk, strings.Join(args, " "), err, out)
	}
	r, err := ParseWrkOutput(out)
	if err != nil {
		return WrkRun{}, fmt.Errorf("target %s: %w", t.Name, err)
	}
	if pid > 0 {
		after, err := ProcCPU(pid)
		if err != nil {
			return WrkRun{}, err
		}
		r.CPU = after - before
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("target %s answered no request:\n%s", t.Name, out)
	}
	return r, nil
}

var (
	reWrkTotal  = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	reWrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reWrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reWrkP99    = regexp.MustCompile(`(?m)^\s*99%\s+([0-9.]+)(us|ms|s|m)\s*$`)
)

// ParseWrkOutput reads requests, elapsed time, errors and p99 from wrk's text report (wrk 4.x with
// --latency).
func ParseWrkOutput(out []byte) (WrkRun, error) {
	var r WrkRun
	m := reWrkTotal.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("cannot find the request count in wrk's output:\n%s", out)
	}
	r.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.Elapsed = wrkDuration(m[2], m[3])
	if m := reWrkSocket.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.ParseInt(string(g), 10, 64)
			r.Errors += n
		}
	}
	if m := reWrkNon2xx.FindSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		r.Errors += n
	}
	if m := reWrkP99.FindSubmatch(out); m != nil {
		r.P99 = wrkDuration(m[1], m[2])
	}
	return r, nil
}

func wrkDuration(num, unit []byte) time.Duration {
	v, _ := strconv.ParseFloat(string(num), 64)
	switch string(unit) {
	case "us":
		return time.Duration(v * float64(time.Microsecond))
	case "ms":
		return time.Duration(v * float64(time.Millisecond))
	case "m":
		return time.Duration(v * float64(time.Minute))
	}
	return time.Duration(v * float64(time.Second))
}

func wrkVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	sc := bufio.NewScanner(bytes.NewReader(out))
	if sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 {
			return f[0] + " " + f[1]
		}
	}
	return "wrk"
}

// WriteMarkdown writes one table per scenario: median req/s, median CPU µs/req (min–max over the
// rounds) and the CPU ratio to every baseline, then a line on the method.
func (r *WrkResult) WriteMarkdown(w io.Writer) {
	cfg := r.Config
	fmt.Fprintf(w, "Closed loop with %s (`wrk -t1 -c%d -d%s --latency -s SCENARIO.lua`): %d rounds, order shuffled per round, %s measured per target, scenario and round",
		r.Version, cfg.Connections, cfg.Duration, cfg.Rounds, cfg.Duration)
	if cfg.Warmup > 0 {
		fmt.Fprintf(w, " after a %s warm-up in the first round", cfg.Warmup)
	}
	fmt.Fprintf(w, ". CPU is utime+stime of each proxy's process (and its children, for nginx's workers) from /proc during the run, divided by the requests wrk counted; medians over the rounds, range in brackets.\n")
	for _, sc := range cfg.Scenarios {
		fmt.Fprintf(w, "\n**%s**: `%s %s`", sc.Name, sc.Method, sc.Path)
		if sc.Body != "" {
			if sc.Distinct {
				fmt.Fprintf(w, " with a distinct body per request (`%s`, %%d a counter never repeated)", sc.Body)
			} else {
				fmt.Fprintf(w, " with the same body every time (`%s`)", sc.Body)
			}
		}
		fmt.Fprintf(w, "\n\n| target | req/s | CPU µs/req |")
		for _, b := range cfg.Baselines {
			fmt.Fprintf(w, " CPU ÷ %s |", b)
		}
		fmt.Fprintf(w, " p99 | errors |\n|---|---:|---:|")
		for range cfg.Baselines {
			fmt.Fprintf(w, "---:|")
		}
		fmt.Fprintf(w, "---:|---:|\n")
		for _, t := range cfg.Targets {
			c := r.Cell(sc.Name, t.Name)
			if c == nil {
				continue
			}
			rps, cpu := c.medians()
			lo, hi := c.cpuRange()
			cpuCol := "—"
			if cfg.Pids[t.Name] > 0 {
				cpuCol = fmt.Sprintf("%.1f (%.1f–%.1f)", cpu, lo, hi)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s |", t.Name, rps, cpuCol)
			for _, b := range cfg.Baselines {
				bc := r.Cell(sc.Name, b)
				if bc == nil || cfg.Pids[t.Name] == 0 {
					fmt.Fprintf(w, " — |")
					continue
				}
				_, bcpu := bc.medians()
				fmt.Fprintf(w, " %s |", ratio(cpu, bcpu))
			}
			var p99 []float64
			for _, x := range c.Runs {
				p99 = append(p99, float64(x.P99.Microseconds()))
			}
			fmt.Fprintf(w, " %s | %d |\n", FormatMicros(median(p99)), c.errors())
		}
	}
}

// CPURatio returns the median CPU µs/req of scenario a × target ta over that of scenario b ×
// target tb (0 when either is missing).
func (r *WrkResult) CPURatio(sa, ta, sb, tb string) float64 {
	a, b := r.Cell(sa, ta), r.Cell(sb, tb)
	if a == nil || b == nil {
		return 0
	}
	_, ca := a.medians()
	_, cb := b.medians()
	if cb == 0 {
		return 0
	}
	return ca / cb
}

// RPSRatio is CPURatio for median requests per second.
func (r *WrkResult) RPSRatio(sa, ta, sb, tb string) float64 {
	a, b := r.Cell(sa, ta), r.Cell(sb, tb)
	if a == nil || b == nil {
		return 0
	}
	ra, _ := a.medians()
	rb, _ := b.medians()
	if rb == 0 {
		return 0
	}
	return ra / rb
}

// DefaultWrkScenarios are the pass-through benchmark's wrk scenarios on index: a document GET, a
// _search whose body differs on every request (a result-cache miss every time) and the same
// _search repeated (a hit after the first). searchTargets limits the _search scenarios (nil: all).
func DefaultWrkScenarios(index string, searchTargets []string) []WrkScenario {
	return []WrkScenario{
		{Name: "doc-get", Method: "GET", Path: "/" + index + "/_doc/1"},
		{Name: "search-miss", Method: "POST", Path: "/" + index + "/_search", Distinct: true,
			Body: `{"query":{"match":{"title":"shirt %d"}}}`, Targets: searchTargets},
		{Name: "search-hit", Method: "POST", Path: "/" + index + "/_search",
			Body: `{"query":{"match":{"title":"shirt"}}}`, Targets: searchTargets},
	}
}

// WrkRoles names the targets that the targets compare.
type WrkRoles struct {
	Proxy   string // vlproxy in its default configuration (result cache on)
	NoCache string // vlproxy with the result cache off
	Floor   string // the bare fasthttp proxy
	Nginx   string
}

// WriteTargets writes a table of the pass-through and cache targets, each met or missed with the
// ratio measured in this run (medians over the rounds).
func (r *WrkResult) WriteTargets(w io.Writer, roles WrkRoles) {
	type row struct {
		what, bound string
		v           float64
		max         bool // v must be <= limit (else >=)
		limit       float64
	}
	p, f, n, nc := roles.Proxy, roles.Floor, roles.Nginx, roles.NoCache
	rows := []row{
		{"`_doc` GET: CPU/req ÷ " + f, "≤ 1.10", r.CPURatio("doc-get", p, "doc-get", f), true, 1.10},
		{"`_doc` GET: req/s ÷ " + f, "≥ 0.95", r.RPSRatio("doc-get", p, "doc-get", f), false, 0.95},
		{"`_doc` GET: CPU/req ÷ " + n + " (stretch)", "≤ 1.0", r.CPURatio("doc-get", p, "doc-get", n), true, 1.0},
		{"`_doc` GET: req/s ÷ " + n + " (stretch)", "≥ 1.0", r.RPSRatio("doc-get", p, "doc-get", n), false, 1.0},
		{"`_search` miss, default config: CPU/req ÷ " + f, "≤ 1.3", r.CPURatio("search-miss", p, "search-miss", f), true, 1.3},
		{"`_search` hit, default config: CPU/req ÷ pass-through of the same request (" + nc + ")", "≤ 0.5", r.CPURatio("search-hit", p, "search-hit", nc), true, 0.5},
		{"`_search` pass-through (" + nc + "): CPU/req ÷ " + f, "—", r.CPURatio("search-hit", nc, "search-hit", f), true, 0},
	}
	fmt.Fprintf(w, "| target (wrk, this run) | bound | measured | |\n|---|---:|---:|---|\n")
	for _, x := range rows {
		verdict := ""
		switch {
		case x.v == 0:
			verdict = "not measured"
		case x.limit == 0:
			verdict = "(no target)"
		case (x.max && x.v <= x.limit) || (!x.max && x.v >= x.limit):
			verdict = "met"
		default:
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %s |\n", x.what, x.bound, x.v, verdict)
	}
}
