package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/vlproxy/vlproxy/model/modeltest"
	"github.com/vlproxy/vlproxy/testenv"
)

// Fleet mode end to end: three vlproxy processes (the real binary) in front of the real
// OpenSearch node, sharing one real redis-server, with the model simulator counting calls.

// buildVLProxy builds cmd/vlproxy into the test's temporary directory (the go build cache
// makes every build after the first a link).
func buildVLProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vlproxy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vlproxy")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build vlproxy: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type replica struct {
	url string
	cmd *exec.Cmd
	log *syncBuffer
}

// startReplica runs the vlproxy binary on a free loopback port and waits for its health
// endpoint. It is stopped (SIGTERM, then SIGKILL) when the test ends.
func startReplica(t *testing.T, bin string, args ...string) *replica {
	t.Helper()
	for attempt := 0; ; attempt++ {
		r, portTaken := tryReplica(t, bin, args)
		if r != nil {
			return r
		}
		if !portTaken || attempt == 3 {
			t.Fatal("cannot start vlproxy")
		}
	}
}

func tryReplica(t *testing.T, bin string, args []string) (r *replica, portTaken bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r = &replica{url: "http://" + addr, log: &syncBuffer{}}
	r.cmd = exec.Command(bin, append([]string{"-listen", addr, "-log-level", "warn"}, args...)...)
	r.cmd.Stderr = r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("cannot start vlproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { r.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("vlproxy %s log:\n%s", addr, r.log.String())
		}
	})
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(r.url + "/_vlproxy/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r, false
			}
		}
		select {
		case <-exited:
			t.Logf("vlproxy on %s exited at start-up:\n%s", addr, r.log.String())
			return nil, true
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vlproxy on %s not healthy within 20s:\n%s", addr, r.log.String())
		}
	}
}

// fleetEnv is three replicas sharing one redis.
type fleetEnv struct {
	node     string
	sim      *modeltest.Server
	redis    *testenv.Redis
	replicas []*replica
}

func startFleet(t *testing.T, n int, simCfg modeltest.Config, extra ...string) *fleetEnv {
	t.Helper()
	node := testenv.URL(t)
	red := testenv.StartRedisT(t)
	sim := modeltest.NewServer(simCfg)
	t.Cleanup(sim.Close)
	bin := buildVLProxy(t)
	e := &fleetEnv{node: node, sim: sim, redis: red}
	for range n {
		// The guarantees hold while Redis answers within -redis-timeout (a later answer is a
		// miss, by design); the shared test machine is often loaded, so allow 10× the default.
		args := append([]string{"-upstream", node, "-model-url", sim.URL, "-redis-url", red.URL,
			"-redis-timeout", "500ms", "-result-cache-ttl", "1m"}, extra...)
		e.replicas = append(e.replicas, startReplica(t, bin, args...))
	}
	return e
}

func (e *fleetEnv) modelCalls() int64 { return e.sim.Calls()["/v1/chat/completions"] }

// redisUp reads a replica's view of Redis from /_vlproxy/health.
func redisUp(t *testing.T, r *replica) bool {
	t.Helper()
	h := mustDo(t, rawClient(), 200, "GET", r.url+"/_vlproxy/health", nil)
	v := gjson.GetBytes(h.Body, "components.redis.up")
	if !v.Exists() {
		t.Fatalf("health has no redis component: %s", h.Body)
	}
	return v.Bool()
}

func waitRedisState(t *testing.T, rs []*replica, up bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, r := range rs {
		for redisUp(t, r) != up {
			if time.Now().After(deadline) {
				t.Fatalf("%s never reported redis up=%v", r.url, up)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A document indexed with refresh=true through replica A is found by the very next search
// through B and C, whose identical searches were cached a moment before.
func TestFleetReadYourWrites(t *testing.T) {
	e := startFleet(t, 3, modeltest.Config{})
	a, b, c := e.replicas[0], e.replicas[1], e.replicas[2]
	cl := rawClient()
	idx := uniqueName("fleet-ryw")
	mustDo(t, cl, 200, "PUT", a.url+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, e.node, idx) })

	const rounds = 20
	stale := 0
	hits := 0
	for i := 1; i <= rounds; i++ {
		for _, r := range []*replica{b, c} {
			first := search(t, cl, r.url+"/"+idx+"/_search", shirtQuery)
			second := search(t, cl, r.url+"/"+idx+"/_search", shirtQuery)
			if second.cache == "hit" {
				hits++
			}
			if first.total != int64(i-1) || second.total != int64(i-1) {
				t.Fatalf("round %d, %s before the write: totals %d, %d, want %d", i, r.url, first.total, second.total, i-1)
			}
		}
		doc := fmt.Sprintf(`{"sku":"s%d","title":"blue shirt %d"}`, i, i)
		mustDo(t, cl, 201, "PUT", a.url+"/"+idx+"/_doc/"+strconv.Itoa(i)+"?refresh=true", []byte(doc))
		for _, r := range []*replica{b, c} {
			if got := search(t, cl, r.url+"/"+idx+"/_search", shirtQuery); got.total != int64(i) {
				stale++
				t.Errorf("round %d: %s answered %d hits (X-VLProxy-Cache %s) right after a write through A, want %d", i, r.url, got.total, got.cache, i)
			}
		}
	}
	if hits != 2*rounds {
		t.Fatalf("%d of %d repeated searches were cache hits: the result cache is not in play", hits, 2*rounds)
	}
	t.Logf("fleet read-your-writes: %d rounds × 2 replicas, %d stale answers, %d cache hits before the writes", rounds, stale, hits)
}

// The same test without Redis shows what fleet mode fixes: B keeps serving its cached answer.
func TestFleetWithoutRedisServesStale(t *testing.T) {
	node := testenv.URL(t)
	bin := buildVLProxy(t)
	a := startReplica(t, bin, "-upstream", node, "-result-cache-ttl", "1m")
	b := startReplica(t, bin, "-upstream", node, "-result-cache-ttl", "1m")
	cl := rawClient()
	idx := uniqueName("fleet-solo")
	mustDo(t, cl, 200, "PUT", a.url+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, node, idx) })
	warm(t, cl, b.url+"/"+idx+"/_search", shirtQuery, 0)
	mustDo(t, cl, 201, "PUT", a.url+"/"+idx+"/_doc/1?refresh=true", []byte(`{"title":"blue shirt"}`))
	if got := search(t, cl, b.url+"/"+idx+"/_search", shirtQuery); got.total != 0 || got.cache != "hit" {
		t.Fatalf("without redis, B answered %d (%s); the control expects its stale cached 0", got.total, got.cache)
	}
}

// testJPEG is a small photo of one random colour: a query image no cache has seen.
func testJPEG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	col := color.RGBA{uint8(rand.IntN(256)), uint8(rand.IntN(256)), uint8(rand.IntN(256)), 255}
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, col)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// 3 replicas × 100 concurrent identical cold photo queries make one model call.
func TestFleetSingleFlightModelCalls(t *testing.T) {
	photo := testJPEG(t)
	raw, _ := base64.StdEncoding.DecodeString(photo)
	sum := sha256.Sum256(raw)
	e := startFleet(t, 3, modeltest.Config{
		Latency: modeltest.Latency{Base: modeltest.Duration(400 * time.Millisecond)},
		Images:  map[string]modeltest.Output{hex.EncodeToString(sum[:]): {Keywords: []string{"red", "shirt"}}},
	})
	cl := rawClient()
	idx := uniqueName("fleet-sf")
	createIndex(t, e.node, idx)
	mustDo(t, cl, 201, "PUT", e.node+"/"+idx+"/_doc/1?refresh=true", []byte(`{"title":"red shirt"}`))
	body := []byte(`{"query":{"multimodal":{"image":"` + photo + `","fields":["title"]}}}`)

	before := e.modelCalls()
	const perReplica = 100
	var wg sync.WaitGroup
	var failed atomic.Int64
	var found atomic.Int64
	start := make(chan struct{})
	for _, r := range e.replicas {
		for range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("POST", r.url+"/"+idx+"/_search", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := cl.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					return
				}
				if gjson.GetBytes(buf.Bytes(), "hits.total.value").Int() == 1 {
					found.Add(1)
				} else if found.Load() == 0 && failed.Load() == 0 {
					t.Logf("no hit: %s %s %.1500s", resp.Header.Get("X-Vlproxy-Rewrite"), resp.Header.Get("X-Vlproxy-Cache"), buf.Bytes())
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	calls := e.modelCalls() - before
	t.Logf("fleet single-flight: %d replicas × %d identical cold image queries → %d model calls, %d failed, %d found the product",
		len(e.replicas), perReplica, calls, failed.Load(), found.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	if found.Load() != int64(len(e.replicas)*perReplica) {
		t.Fatalf("%d of %d answers found the product: the keywords did not reach every replica", found.Load(), len(e.replicas)*perReplica)
	}
	if calls != 1 {
		t.Fatalf("%d model calls for %d identical cold queries over %d replicas, want 1", calls, len(e.replicas)*perReplica, len(e.replicas))
	}
}

// Redis killed under load: no request fails, health and metrics say so, and the replicas
// rejoin (with fleet-wide invalidation working again) when it is back.
func TestFleetRedisKilledUnderLoad(t *testing.T) {
	e := startFleet(t, 3, modeltest.Config{
		Latency: modeltest.Latency{Base: modeltest.Duration(5 * time.Millisecond)},
	}, "-rewrite-timeout", "2s")
	cl := rawClient()
	idx := uniqueName("fleet-kill")
	mustDo(t, cl, 200, "PUT", e.replicas[0].url+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, e.node, idx) })

	var sent, failed, writes atomic.Int64
	var failMu sync.Mutex
	var failures []string
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				r := e.replicas[(w+i)%len(e.replicas)]
				var method, url string
				var body []byte
				want := 200
				switch i % 10 {
				case 0:
					n := writes.Add(1)
					method, url, want = "PUT", fmt.Sprintf("%s/%s/_doc/%d-%d?refresh=true", r.url, idx, w, n), 201
					body = []byte(`{"title":"green shirt"}`)
				case 1, 2, 3:
					// A text the model has not seen yet: a keyword call (L2 miss, then lock, then set).
					method, url = "POST", r.url+"/"+idx+"/_search"
					body = []byte(fmt.Sprintf(`{"query":{"multimodal":{"text":"shirt for day %d %d","fields":["title"]}}}`, w, i))
				default:
					method, url = "POST", r.url+"/"+idx+"/_search"
					body = []byte(shirtQuery)
				}
				req, _ := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				sent.Add(1)
				resp, err := cl.Do(req)
				if err == nil {
					var buf bytes.Buffer
					buf.ReadFrom(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						err = fmt.Errorf("status %d: %.200s", resp.StatusCode, buf.Bytes())
					}
				}
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, method+" "+url+": "+err.Error())
					failMu.Unlock()
				}
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	e.redis.Kill()
	killedAt := sent.Load()
	waitRedisState(t, e.replicas, false, 3*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if err := e.redis.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	restartedAt := sent.Load()
	waitRedisState(t, e.replicas, true, 5*time.Second)
	wg.Wait()
	t.Logf("redis kill under load: %d requests (%d during the outage), %d writes, %d failed", sent.Load(), restartedAt-killedAt, writes.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed around the redis kill, e.g. %v", failed.Load(), failures[:min(5, len(failures))])
	}
	if restartedAt-killedAt < 20 {
		t.Fatalf("only %d requests during the outage: the load did not cover it", restartedAt-killedAt)
	}

	// Rejoined: fleet-wide invalidation works again.
	a, b := e.replicas[0], e.replicas[1]
	q := `{"query":{"match":{"title":"purple"}}}`
	warm(t, cl, b.url+"/"+idx+"/_search", q, 0)
	mustDo(t, cl, 201, "PUT", a.url+"/"+idx+"/_doc/purple?refresh=true", []byte(`{"title":"purple shirt"}`))
	if got := search(t, cl, b.url+"/"+idx+"/_search", q); got.total != 1 {
		t.Fatalf("after redis came back, B answered %d (%s) for a write through A, want 1", got.total, got.cache)
	}
	m := string(mustDo(t, cl, 200, "GET", a.url+"/metrics", nil).Body)
	for _, want := range []string{"vlproxy_redis_up 1", `vlproxy_redis_transitions_total{state="down"} 1`, `vlproxy_redis_transitions_total{state="up"} 1`} {
		if !bytes.Contains([]byte(m), []byte(want+"\n")) {
			t.Errorf("metrics of A lack %q", want)
		}
	}
}

// A live /metrics after real traffic passes `promtool check metrics` (Debian's prometheus
// package): HELP and TYPE for every family, le buckets, names by the Prometheus conventions.
func TestPrometheusExpositionPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool is not installed (testenv/install-deps.sh installs it)")
		}
		t.Skip("promtool is not installed (testenv/install-deps.sh installs it)")
	}
	e := startFleet(t, 1, modeltest.Config{Rules: []modeltest.Rule{{Output: modeltest.Output{Keywords: []string{"shirt"}}}}})
	r := e.replicas[0]
	cl := rawClient()
	idx := uniqueName("metrics")
	mustDo(t, cl, 200, "PUT", r.url+"/"+idx, []byte(transparencyIndex))
	t.Cleanup(func() { deleteIndex(t, e.node, idx) })
	mustDo(t, cl, 201, "PUT", r.url+"/"+idx+"/_doc/1?refresh=true", []byte(`{"title":"blue shirt"}`))
	mustDo(t, cl, 200, "GET", r.url+"/", nil)
	search(t, cl, r.url+"/"+idx+"/_search", shirtQuery)
	search(t, cl, r.url+"/"+idx+"/_search", shirtQuery)
	search(t, cl, r.url+"/"+idx+"/_search", `{"query":{"multimodal":{"image":"`+testJPEG(t)+`","fields":["title"]}}}`)
	search(t, cl, r.url+"/"+idx+"/_search", `{"query":{"multimodal":{"text":"a shirt","fields":["title"]}}}`)
	do(t, cl, "GET", r.url+"/_vlproxy/nope", nil)

	body := mustDo(t, cl, 200, "GET", r.url+"/metrics", nil).Body
	for _, want := range []string{
		"# HELP vlproxy_requests_total ", "# TYPE vlproxy_requests_total counter",
		"# TYPE vlproxy_request_duration_seconds histogram", `vlproxy_request_duration_seconds_bucket{class="search",le="0.005"}`,
		`vlproxy_request_stage_duration_seconds_bucket{class="search",stage="rewrite",le="+Inf"}`,
		`vlproxy_model_request_duration_seconds_bucket{`, `vlproxy_cache_hits_total{cache="results"}`,
		`vlproxy_l2_fills_total{cache="keywords",role="leader"} 2`, "vlproxy_redis_up 1", "# TYPE go_goroutines gauge",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if bytes.Contains(body, []byte("vmrange")) {
		t.Error("/metrics still has vmrange buckets")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if err != nil {
		t.Fatalf("cannot run promtool: %v", err)
	}
	t.Logf("promtool check metrics: clean on %d bytes of /metrics", len(body))
	checkDashboard(t, body)
}

// checkDashboard requires every series the Grafana dashboard queries to exist: in the live
// exposition, or (experiment series, exported only once an experiment is configured) declared
// in proxy/experiment. Histogram queries must use histograms.
func checkDashboard(t *testing.T, exposition []byte) {
	t.Helper()
	raw, err := os.ReadFile("../docker/grafana/vlproxy-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	expSrc, err := os.ReadFile("../proxy/experiment/experiment.go")
	if err != nil {
		t.Fatal(err)
	}
	exprs := gjson.GetBytes(raw, "panels.#.targets.#.expr")
	if !exprs.IsArray() {
		t.Fatal("the dashboard has no panel targets")
	}
	name := regexp.MustCompile(`vlproxy_[a-z0-9_]+`)
	checked := map[string]bool{}
	for _, panel := range exprs.Array() {
		for _, e := range panel.Array() {
			for _, m := range name.FindAllString(e.String(), -1) {
				family, typ := m, ""
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if f, ok := strings.CutSuffix(m, suf); ok {
						family, typ = f, "histogram"
					}
				}
				if checked[m] {
					continue
				}
				checked[m] = true
				if strings.HasPrefix(family, "vlproxy_experiment_") {
					if !bytes.Contains(expSrc, []byte(`Name: "`+family+`"`)) {
						t.Errorf("dashboard queries %s, which proxy/experiment does not declare", m)
					}
					continue
				}
				line := "# TYPE " + family + " "
				i := bytes.Index(exposition, []byte(line))
				if i < 0 {
					t.Errorf("dashboard queries %s, absent from /metrics", m)
					continue
				}
				if typ != "" && !bytes.HasPrefix(exposition[i+len(line):], []byte(typ)) {
					t.Errorf("dashboard queries %s as a histogram, /metrics says otherwise", m)
				}
			}
		}
	}
	if len(checked) < 20 {
		t.Fatalf("only %d series names found in the dashboard", len(checked))
	}
}

// The FROM-scratch image builds with podman (no pull) and serves in front of the test node.
func TestPodmanScratchImage(t *testing.T) {
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (testenv/install-deps.sh installs it)", tool)
			}
			t.Skipf("%s is not installed (testenv/install-deps.sh installs it)", tool)
		}
	}
	node := testenv.URL(t)
	cmd := exec.Command("bash", "docker/podman-smoke.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), testenv.EnvURL+"="+node)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker/podman-smoke.sh: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("podman-smoke: ok")) {
		t.Fatalf("docker/podman-smoke.sh said:\n%s", out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}
