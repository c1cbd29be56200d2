package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Target is one system under test.
type Target struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// ParseTarget parses "name=URL" (or a bare URL, named after its host:port). Only loopback hosts are
// accepted unless allowRemote.
func ParseTarget(s string, allowRemote bool) (Target, error) {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || strings.Contains(name, "/") {
		name, raw = "", s
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Target{}, fmt.Errorf("target %q: cannot parse URL: want name=http://host:port", s)
	}
	if name == "" {
		name = u.Host
	}
	if !allowRemote && !isLoopback(u.Hostname()) {
		return Target{}, fmt.Errorf("target %q: host %q is not a loopback address (pass -allow-remote to load it)", s, u.Hostname())
	}
	return Target{Name: name, URL: strings.TrimRight(raw, "/")}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadConfig configures a load run.
type LoadConfig struct {
	// Targets are run one after another in each round, in a shuffled order per round.
	Targets []Target `yaml:"targets"`
	// Mix is the request mix. Default: DefaultMix().
	Mix *Mix `yaml:"-"`
	// Rate is the open-loop arrival rate per target in requests/s. 0 selects closed loop.
	// Default: 0.
	Rate float64 `yaml:"rate"`
	// Concurrency is the number of closed-loop connections. Default: 64.
	Concurrency int `yaml:"concurrency"`
	// Workers bounds open-loop requests in flight (and connections). Default: 512.
	Workers int `yaml:"workers"`
	// Warmup runs before each measured segment and is not recorded. Default: 1s.
	Warmup time.Duration `yaml:"warmup"`
	// Duration is the measured time per target, split over Rounds. Default: 10s (unless Count).
	Duration time.Duration `yaml:"duration"`
	// Count, when set, measures this many requests per target instead of a duration.
	Count int `yaml:"count"`
	// Rounds interleaves targets: each round runs every target once. Default: 1.
	Rounds int `yaml:"rounds"`
	// Timeout bounds one request. Default: 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Pids names processes whose CPU time (with their children) is measured around every segment,
	// reported as CPU µs per request. The load generator itself is always measured as "vlbench".
	Pids map[string]int `yaml:"pids"`
	// Seed makes request selection and target order reproducible. Default: 1.
	Seed uint64 `yaml:"seed"`
	// Progress, if set, is called about 4 times a second.
	Progress func(p Progress) `yaml:"-"`
}

// DefaultLoadConfig returns the defaults documented on LoadConfig.
func DefaultLoadConfig() LoadConfig {
	return LoadConfig{Concurrency: 64, Workers: 512, Warmup: time.Second, Duration: 10 * time.Second,
		Rounds: 1, Timeout: 10 * time.Second, Seed: 1}
}

// Progress describes the running segment.
type Progress struct {
	Target   string
	Round    int
	Rounds   int
	Warmup   bool
	Fraction float64
	Done     int64
	Errors   int64
	Rate     float64
}

// Percentiles in microseconds.
type Percentiles struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p99_9_us"`
	Max  float64 `json:"max_us"`
}

// CurvePoint is one point of a latency-percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"percentile"`
	Micros     float64 `json:"us"`
}

// Segment is one measured run of one target in one round.
type Segment struct {
	Round    int     `json:"round"`
	Achieved float64 `json:"achieved_rps"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
}

// TargetResult is the outcome for one target, merged over its rounds.
type TargetResult struct {
	Target
	Mode       string           `json:"mode"`
	TargetRate float64          `json:"target_rps,omitempty"`
	Achieved   float64          `json:"achieved_rps"`
	Invalid    bool             `json:"invalid"`
	Seconds    float64          `json:"seconds"`
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Dropped    int64            `json:"dropped"`
	Errors     map[string]int64 `json:"errors"`
	// ErrorSamples holds the first error message seen per transport error class.
	ErrorSamples map[string]string      `json:"error_samples,omitempty"`
	Statuses     map[string]int64       `json:"statuses"`
	Latency      Percentiles            `json:"latency"`
	Service      Percentiles            `json:"service"`
	Curve        []CurvePoint           `json:"curve"`
	Headers      map[string]int64       `json:"vlproxy_headers,omitempty"`
	CacheHits    int64                  `json:"cache_hits"`
	Stages       map[string]Percentiles `json:"server_timing,omitempty"`
	CPUPerReq    map[string]float64     `json:"cpu_us_per_req,omitempty"`
	// PeakRSSMiB is the peak resident memory (VmHWM, process and children) of each -pid process
	// at the end of this target's last segment; the peak covers the process's whole life.
	PeakRSSMiB  map[string]float64 `json:"peak_rss_mib,omitempty"`
	Segments    []Segment          `json:"segments"`
	latency     *hdrhistogram.Histogram
	service     *hdrhistogram.Histogram
	stageHist   map[string]*hdrhistogram.Histogram
	cpu         map[string]time.Duration
	measuredDur time.Duration
}

// Report is the outcome of a load run.
type Report struct {
	Mode     string          `json:"mode"`
	Rate     float64         `json:"target_rps,omitempty"`
	Mix      []string        `json:"mix"`
	Warmup   string          `json:"warmup"`
	Duration string          `json:"duration,omitempty"`
	Count    int             `json:"count,omitempty"`
	Rounds   int             `json:"rounds"`
	Workers  int             `json:"workers"`
	Started  time.Time       `json:"started"`
	Targets  []*TargetResult `json:"targets"`
}

const histMaxMicros = 120_000_000

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMaxMicros, 3) }

// shard holds histograms and counters updated by a subset of workers under one mutex.
type shard struct {
	mu       sync.Mutex
	lat, svc *hdrhistogram.Histogram
	stages   map[string]*hdrhistogram.Histogram
	headers  map[string]*int64
	errors   map[string]int64
	samples  map[string]string
	statuses map[int]int64
	ok, n    int64
	cacheHit int64
	lastDone int64
	_        [64]byte
}

const numShards = 8

// Run executes the load run described by cfg.
func Run(ctx context.Context, cfg LoadConfig) (*Report, error) {
	def := DefaultLoadConfig()
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = def.Concurrency
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.Duration <= 0 && cfg.Count <= 0 {
		cfg.Duration = def.Duration
	}
	if cfg.Seed == 0 {
		cfg.Seed = def.Seed
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets: give at least one -target name=URL")
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("rate must be >= 0, got %g", cfg.Rate)
	}
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		if seen[t.Name] {
			return nil, fmt.Errorf("target name %q is given twice", t.Name)
		}
		seen[t.Name] = true
	}
	for name, pid := range cfg.Pids {
		if _, err := ProcCPU(pid); err != nil {
			return nil, fmt.Errorf("pid %s=%d: %w", name, pid, err)
		}
	}
	rep := &Report{Mode: "closed", Rate: cfg.Rate, Warmup: cfg.Warmup.String(), Rounds: cfg.Rounds,
		Workers: cfg.Concurrency, Started: time.Now(), Count: cfg.Count}
	if cfg.Rate > 0 {
		rep.Mode, rep.Workers = "open", cfg.Workers
	}
	if cfg.Count <= 0 {
		rep.Duration = cfg.Duration.String()
	}
	for _, e := range cfg.Mix.Entries {
		rep.Mix = append(rep.Mix, e.Name)
	}
	runners := make([]*runner, len(cfg.Targets))
	for i, t := range cfg.Targets {
		r, err := newRunner(t, &cfg)
		if err != nil {
			return nil, err
		}
		runners[i] = r
		rep.Targets = append(rep.Targets, r.res)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for round := 0; round < cfg.Rounds; round++ {
		order := rng.Perm(len(runners))
		for _, i := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			runners[i].segment(ctx, round)
		}
	}
	for _, r := range runners {
		r.finish()
	}
	return rep, nil
}

type runner struct {
	cfg  *LoadConfig
	hc   *fasthttp.HostClient
	reqs []*fasthttp.Request // one template per mix entry
	res  *TargetResult
	seed uint64
}

func newRunner(t Target, cfg *LoadConfig) (*runner, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("target %s: cannot parse URL: %w", t.Name, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	conns := cfg.Concurrency
	if cfg.Rate > 0 {
		conns = cfg.Workers
	}
	r := &runner{cfg: cfg, seed: uint64(len(t.Name)) + 7}
	r.hc = &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         u.Scheme == "https",
		MaxConns:                      conns,
		MaxIdleConnDuration:           time.Minute,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		ReadBufferSize:                16 << 10,
		MaxIdemponentCallAttempts:     1,
	}
	prefix := strings.TrimRight(u.Path, "/")
	for _, e := range cfg.Mix.Entries {
		req := &fasthttp.Request{}
		req.Header.DisableNormalizing()
		req.Header.SetMethod(e.Method)
		req.SetRequestURI(prefix + e.Path)
		req.Header.SetHost(u.Host)
		for k, v := range e.Headers {
			req.Header.Set(k, v)
		}
		if len(e.body) > 0 {
			req.SetBody(e.body)
			if len(req.Header.ContentType()) == 0 {
				req.Header.SetContentType("application/json")
			}
		}
		r.reqs = append(r.reqs, req)
	}
	r.res = &TargetResult{Target: t, Mode: "closed", TargetRate: cfg.Rate, Errors: map[string]int64{}, ErrorSamples: map[string]string{},
		Statuses: map[string]int64{}, Headers: map[string]int64{}, Stages: map[string]Percentiles{},
		CPUPerReq: map[string]float64{}, PeakRSSMiB: map[string]float64{}, latency: newHist(), service: newHist(),
		stageHist: map[string]*hdrhistogram.Histogram{}, cpu: map[string]time.Duration{}}
	if cfg.Rate > 0 {
		r.res.Mode = "open"
	}
	return r, nil
}

// segment runs warm-up plus one measured segment.
func (r *runner) segment(ctx context.Context, round int) {
	cfg := r.cfg
	shards := make([]*shard, numShards)
	for i := range shards {
		shards[i] = &shard{lat: newHist(), svc: newHist(), stages: map[string]*hdrhistogram.Histogram{},
			headers: map[string]*int64{}, errors: map[string]int64{}, samples: map[string]string{}, statuses: map[int]int64{}}
	}
	segDur := cfg.Duration / time.Duration(cfg.Rounds)
	segCount := 0
	if cfg.Count > 0 {
		segCount = (cfg.Count + cfg.Rounds - 1) / cfg.Rounds
	}
	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	measureStart := int64(cfg.Warmup)
	// Hard bound: the measured time (or, with -count, 3x the time the count would take at the
	// rate, at least 60s) plus a grace of one request timeout.
	bound := segDur
	if segCount > 0 {
		bound = time.Minute
		if cfg.Rate > 0 {
			bound = max(bound, time.Duration(3*float64(segCount)/cfg.Rate*float64(time.Second)))
		}
	}
	hardEnd := base.Add(cfg.Warmup + bound + cfg.Timeout)
	measureEnd := int64(cfg.Warmup + segDur)
	if segCount > 0 {
		measureEnd = int64(cfg.Warmup + bound)
	}

	var done, errs, measured atomic.Int64
	var stop atomic.Bool
	cpuBefore := map[string]time.Duration{}
	var cpuOnce sync.Once
	snapCPU := func(dst map[string]time.Duration) {
		for name, pid := range cfg.Pids {
			if c, err := ProcCPU(pid); err == nil {
				dst[name] = c
			}
		}
		if c, err := ProcCPU(os.Getpid()); err == nil {
			dst["vlbench"] = c
		}
	}

	record := func(sh *shard, sched, sent, end int64, resp *fasthttp.Response, err error, scratch *[]byte) {
		if sched < measureStart {
			return
		}
		measured.Add(1)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		sh.n++
		if end > sh.lastDone {
			sh.lastDone = end
		}
		_ = sh.lat.RecordValue(max(1, (end-sched)/1000))
		_ = sh.svc.RecordValue(max(1, (end-sent)/1000))
		if err != nil {
			c := classifyErr(err)
			if sh.errors[c]++; sh.errors[c] == 1 {
				sh.samples[c] = err.Error()
			}
			return
		}
		code := resp.StatusCode()
		sh.statuses[code]++
		switch {
		case code >= 500:
			sh.errors["5xx"]++
		case code >= 400:
			sh.errors["4xx"]++
		default:
			sh.ok++
		}
		for k, v := range resp.Header.All() {
			switch {
			case len(k) > 10 && bytes.EqualFold(k[:10], []byte("X-VLProxy-")):
				// Counted under one spelling whatever case the server normalised the name to.
				b := append(append(append(append((*scratch)[:0], "X-VLProxy-"...), k[10:]...), '='), v...)
				*scratch = b
				p := sh.headers[string(b)]
				if p == nil {
					p = new(int64)
					sh.headers[string(b)] = p
				}
				*p++
				if bytes.EqualFold(k[10:], []byte("Cache")) && bytes.EqualFold(v, []byte("hit")) {
					sh.cacheHit++
				}
			case bytes.EqualFold(k, []byte("Server-Timing")):
				parseServerTiming(v, func(name []byte, micros int64) {
					h := sh.stages[string(name)]
					if h == nil {
						h = newHist()
						sh.stages[string(name)] = h
					}
					_ = h.RecordValue(max(1, micros))
				})
			}
		}
	}

	worker := func(id int, next func() (int64, bool)) {
		rng := rand.New(rand.NewPCG(r.seed, uint64(id)+uint64(round)<<32))
		sh := shards[id%numShards]
		resp := &fasthttp.Response{}
		scratch := make([]byte, 0, 128)
		// A fasthttp.Request is not safe for concurrent use: Write rebuilds its URI in place.
		// Each worker sends its own copies.
		reqs := make([]*fasthttp.Request, len(r.reqs))
		for i, src := range r.reqs {
			reqs[i] = &fasthttp.Request{}
			src.CopyTo(reqs[i])
		}
		for {
			sched, ok := next()
			if !ok {
				return
			}
			sent := since()
			req := reqs[cfg.Mix.pick(rng.Float64())]
			deadline := time.Now().Add(cfg.Timeout)
			if deadline.After(hardEnd) {
				deadline = hardEnd
			}
			if sched < 0 {
				sched = sent // closed loop: latency is service time
			}
			err := r.hc.DoDeadline(req, resp, deadline)
			end := since()
			record(sh, sched, sent, end, resp, err, &scratch)
			done.Add(1)
			if err != nil || resp.StatusCode() >= 400 {
				errs.Add(1)
			}
			resp.Reset()
		}
	}

	var wg sync.WaitGroup
	var dropped int64
	progressDone := make(chan struct{})
	go r.progress(round, base, measureStart, measureEnd, segCount, &measured, &errs, progressDone)

	// CPU is snapshotted when the measured phase starts.
	go func() {
		t := time.NewTimer(time.Until(base.Add(cfg.Warmup)))
		defer t.Stop()
		select {
		case <-t.C:
		case <-progressDone:
		}
		cpuOnce.Do(func() { snapCPU(cpuBefore) })
	}()

	if cfg.Rate > 0 {
		interval := float64(time.Second) / cfg.Rate
		queue := make(chan int64, max(1024, min(1<<17, int(cfg.Rate))))
		for i := 0; i < cfg.Workers; i++ {
			wg.Add(1)
			go func(id int) {
				defer wg.Done()
				worker(id, func() (int64, bool) {
					for {
						s, ok := <-queue
						if !ok {
							return 0, false
						}
						if time.Now().Before(hardEnd) {
							return s, true
						}
						if s >= measureStart {
							atomic.AddInt64(&dropped, 1)
						}
					}
				})
			}(i)
		}
		// Scheduler: request i is due at i*interval; each is queued with its due time so that
		// latency counts the wait for a free worker (no coordinated omission).
		measuredSched := 0
		for i := int64(0); ; i++ {
			due := int64(float64(i) * interval)
			if due >= measureEnd || ctx.Err() != nil || stop.Load() {
				break
			}
			if due >= measureStart {
				if segCount > 0 && measuredSched >= segCount {
					break
				}
				measuredSched++
			}
			if d := due - since(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			select {
			case queue <- due:
			default:
				// All workers are busy and the queue is full: block, the due time still counts.
				queue <- due
			}
		}
		close(queue)
	} else {
		var issued atomic.Int64
		for i := 0; i < cfg.Concurrency; i++ {
			wg.Add(1)
			go func(id int) {
				defer wg.Done()
				worker(id, func() (int64, bool) {
					now := since()
					if now >= measureEnd || ctx.Err() != nil || !time.Now().Before(hardEnd) {
						return 0, false
					}
					if now >= measureStart && segCount > 0 && issued.Add(1) > int64(segCount) {
						return 0, false
					}
					return -1, true
				})
			}(i)
		}
	}
	wg.Wait()
	cpuOnce.Do(func() { snapCPU(cpuBefore) })
	cpuAfter := map[string]time.Duration{}
	snapCPU(cpuAfter)
	close(progressDone)

	// Merge the shards into the target's totals.
	res := r.res
	segLat := newHist()
	var n, ok, lastDone int64
	for _, sh := range shards {
		segLat.Merge(sh.lat)
		res.service.Merge(sh.svc)
		for k, h := range sh.stages {
			if res.stageHist[k] == nil {
				res.stageHist[k] = newHist()
			}
			res.stageHist[k].Merge(h)
		}
		for k, p := range sh.headers {
			res.Headers[k] += *p
		}
		for k, v := range sh.errors {
			res.Errors[k] += v
		}
		for k, v := range sh.samples {
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = v
			}
		}
		for k, v := range sh.statuses {
			res.Statuses[strconv.Itoa(k)] += v
		}
		n += sh.n
		ok += sh.ok
		res.CacheHits += sh.cacheHit
		lastDone = max(lastDone, sh.lastDone)
	}
	res.latency.Merge(segLat)
	res.Requests += n
	res.OK += ok
	res.Dropped += dropped
	elapsed := time.Duration(lastDone - measureStart)
	if cfg.Rate > 0 && segCount == 0 {
		// The schedule spans segDur; a slower target stretches the time to the last answer.
		elapsed = max(elapsed, segDur)
	}
	if elapsed > 0 {
		res.measuredDur += elapsed
	}
	for k, after := range cpuAfter {
		res.cpu[k] += after - cpuBefore[k]
	}
	for name, pid := range cfg.Pids {
		if v, err := PeakRSS(pid); err == nil {
			res.PeakRSSMiB[name] = math.Round(float64(v)/(1<<20)*10) / 10
		}
	}
	seg := Segment{Round: round, P50: float64(segLat.ValueAtQuantile(50)), P99: float64(segLat.ValueAtQuantile(99))}
	if elapsed > 0 {
		seg.Achieved = float64(n) / elapsed.Seconds()
	}
	res.Segments = append(res.Segments, seg)
}

func (r *runner) progress(round int, base time.Time, measureStart, measureEnd int64, segCount int, measured, errs *atomic.Int64, stop chan struct{}) {
	if r.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(base))
		p := Progress{Target: r.res.Name, Round: round + 1, Rounds: r.cfg.Rounds, Warmup: now < measureStart,
			Done: measured.Load(), Errors: errs.Load()}
		if now > measureStart {
			p.Rate = float64(p.Done) / (float64(now-measureStart) / 1e9)
		}
		if segCount > 0 {
			p.Fraction = float64(p.Done) / float64(segCount)
		} else if now > measureStart {
			p.Fraction = float64(now-measureStart) / float64(measureEnd-measureStart)
		}
		p.Fraction = min(1, max(0, p.Fraction))
		r.cfg.Progress(p)
	}
}

func (r *runner) finish() {
	res := r.res
	res.Latency = percentiles(res.latency)
	res.Service = percentiles(res.service)
	res.Curve = curve(res.latency)
	for k, h := range res.stageHist {
		res.Stages[k] = percentiles(h)
	}
	res.Seconds = res.measuredDur.Seconds()
	if res.Seconds > 0 {
		res.Achieved = float64(res.Requests) / res.Seconds
	}
	if res.TargetRate > 0 && (res.Achieved < 0.99*res.TargetRate || res.Dropped > 0) {
		res.Invalid = true
	}
	if res.Requests > 0 {
		for k, c := range res.cpu {
			res.CPUPerReq[k] = float64(c.Microseconds()) / float64(res.Requests)
		}
	}
	r.hc.CloseIdleConnections()
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{N: h.TotalCount(), Mean: math.Round(h.Mean()*10) / 10,
		P50: float64(h.ValueAtQuantile(50)), P90: float64(h.ValueAtQuantile(90)),
		P99: float64(h.ValueAtQuantile(99)), P999: float64(h.ValueAtQuantile(99.9)), Max: float64(h.Max())}
}

// curve samples the latency-percentile curve on a log scale of 1/(1-q), up to 99.999%.
func curve(h *hdrhistogram.Histogram) []CurvePoint {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []CurvePoint
	for x := 0.0; x <= 5.0001; x += 0.125 {
		q := 100 * (1 - math.Pow(10, -x))
		out = append(out, CurvePoint{Percentile: math.Round(q*1e6) / 1e6, Micros: float64(h.ValueAtQuantile(q))})
	}
	out = append(out, CurvePoint{Percentile: 100, Micros: float64(h.Max())})
	return out
}

func classifyErr(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no_free_conns"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "conn_closed"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		if ne.Op == "dial" {
			return "dial"
		}
		return "conn"
	}
	return "other"
}

// parseServerTiming calls fn for each "name;dur=ms" metric of a Server-Timing header value.
func parseServerTiming(v []byte, fn func(name []byte, micros int64)) {
	for len(v) > 0 {
		var m []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			m, v = v[:i], v[i+1:]
		} else {
			m, v = v, nil
		}
		m = bytes.TrimSpace(m)
		semi := bytes.IndexByte(m, ';')
		if semi <= 0 {
			continue
		}
		name := bytes.TrimSpace(m[:semi])
		for params := m[semi+1:]; len(params) > 0; {
			var p []byte
			if j := bytes.IndexByte(params, ';'); j >= 0 {
				p, params = params[:j], params[j+1:]
			} else {
				p, params = params, nil
			}
			p = bytes.TrimSpace(p)
			if len(p) > 4 && bytes.EqualFold(p[:4], []byte("dur=")) {
				if ms, err := strconv.ParseFloat(string(p[4:]), 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
					fn(name, int64(ms*1000))
				}
			}
		}
	}
}
