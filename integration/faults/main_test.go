package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vlproxy/vlproxy/testenv"
)

var binDir string // holds the vlproxy binary built for this test run; removed by TestMain

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// vlproxyBinary builds cmd/vlproxy once per test binary: the fault suite runs the real server
// process, so that signals and process death are the real thing.
func vlproxyBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			build.err = err
			return
		}
		if binDir, err = os.MkdirTemp("", "vlproxy-faults-"); err != nil {
			build.err = fmt.Errorf("cannot create a directory for the binary: %w", err)
			return
		}
		build.path = filepath.Join(binDir, "vlproxy")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/vlproxy")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("cannot build cmd/vlproxy: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the module root: %w", err)
	}
	for ; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("cannot find go.mod above the working directory")
		}
	}
}

// vlproxyProc is a vlproxy server process started by startVLProxy.
type vlproxyProc struct {
	URL  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	err  error     // exit status, valid after done
	exit time.Time // when the process exited, valid after done
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startVLProxy runs the vlproxy binary on 127.0.0.1:0 with args (flags) and waits until it
// listens; the address comes from its "vlproxy listening" log line. The process is stopped
// (SIGTERM, then SIGKILL) when the test ends; its log is printed if the test failed.
func startVLProxy(t testing.TB, args ...string) *vlproxyProc {
	t.Helper()
	bin := vlproxyBinary(t)
	// Active health checks run as configured by default: a node is out only after three failed
	// checks in a row, and with every node out requests still go to them (-health-fail-open),
	// so a loaded machine where a serving node misses a check no longer turns into 503s.
	all := append([]string{"-listen", "127.0.0.1:0", "-log-level", "info"}, args...)
	cmd := exec.Command(bin, all...)
	// Only the flags given here configure it: no VLPROXY_* from the test's environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VLPROXY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &vlproxyProc{cmd: cmd, done: make(chan struct{}), log: &lockedBuffer{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start vlproxy: %v", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.log.Write(append(append([]byte(nil), line...), '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "vlproxy listening" && rec.Addr != "" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		p.exit = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("vlproxy log (%s), without its request lines:\n%s", strings.Join(all, " "), tail(withoutRequestLines(p.log.String()), 16000))
		}
	})
	select {
	case addr := <-addrc:
		p.URL = "http://" + addr
	case <-p.done:
		t.Fatalf("vlproxy exited before listening (%v):\n%s", p.err, p.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("vlproxy did not listen within 30s:\n%s", p.log.String())
	}
	return p
}

// signal sends sig to the process.
func (p *vlproxyProc) signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// wait waits up to d for the process to exit and returns its exit error (nil: exit code 0).
func (p *vlproxyProc) wait(d time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

func (p *vlproxyProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if _, ok := p.wait(15 * time.Second); !ok {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// withoutRequestLines drops the "request failed" lines of a vlproxy log (a test counts those
// itself) and keeps the rest: ejections, health changes, drain.
func withoutRequestLines(log string) string {
	var b strings.Builder
	dropped := 0
	for _, l := range strings.SplitAfter(log, "\n") {
		if strings.Contains(l, `"msg":"request failed"`) {
			dropped++
			continue
		}
		b.WriteString(l)
	}
	fmt.Fprintf(&b, "(%d request-failed lines left out)\n", dropped)
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// newClient is a keep-alive client that sends requests as they are (no transparent gzip).
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 128, MaxConnsPerHost: 0},
		Timeout:   timeout,
	}
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
	Took   time.Duration
}

// call sends one request; hdr holds name/value pairs. Errors are returned in reply.Err.
func call(c *http.Client, method, url string, body []byte, hdr ...string) reply {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, r)
	if err != nil {
		return reply{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return reply{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Err: err, Took: time.Since(start)}
}

// must is call that fails the test unless the status is one of want (200 when none).
func must(t testing.TB, c *http.Client, method, url string, body []byte, want ...int) reply {
	t.Helper()
	r := call(c, method, url, body)
	if len(want) == 0 {
		want = []int{200}
	}
	if r.Err != nil {
		t.Fatalf("%s %s: %v", method, url, r.Err)
	}
	for _, w := range want {
		if r.Status == w {
			return r
		}
	}
	t.Fatalf("%s %s: status %d, want %v; body %s", method, url, r.Status, want, tail(string(r.Body), 2000))
	return r
}

// esError checks that body is an ES-shaped error with the given status and returns its type.
func esError(t testing.TB, what string, status int, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			RootCause []struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"root_cause"`
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
		Status int `json:"status"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: not an ES-shaped error (%v): %s", what, err, tail(string(body), 500))
	}
	if e.Status != status || e.Error.Type == "" || e.Error.Reason == "" || len(e.Error.RootCause) == 0 ||
		e.Error.RootCause[0].Type == "" || e.Error.RootCause[0].Reason == "" {
		t.Fatalf("%s: want an ES-shaped error with status %d, got %s", what, status, tail(string(body), 500))
	}
	return e.Error.Type
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// openLoop sends n requests at a fixed rate (one every interval, from start), each in its own
// goroutine, whatever the answers' latency (no coordinated omission), and waits for all of them.
// do gets the request's sequence number.
func openLoop(n int, interval time.Duration, do func(i int)) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(i)
		}()
	}
	wg.Wait()
}

// countByStatus formats a status histogram, e.g. "200:120 502:3 err:1".
func countByStatus(rs []reply) string {
	m := map[string]int{}
	for _, r := range rs {
		k := fmt.Sprint(r.Status)
		if r.Err != nil {
			k = "err"
		}
		m[k]++
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s:%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
