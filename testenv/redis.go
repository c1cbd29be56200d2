package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvRedisURL names a Redis (or Valkey) to test fleet mode against, e.g. "redis://127.0.0.1:6379/0".
// testenv/with-redis.sh sets it; RedisURL starts a private server when it is unset.
const EnvRedisURL = "VLPROXY_TEST_REDIS_URL"

// ErrNoRedis is returned by StartRedis when no redis-server binary is installed.
var ErrNoRedis = errors.New("redis-server is not installed (testenv/install-deps.sh installs Debian's)")

// Redis is a redis-server process started by StartRedis, on a loopback port, without
// persistence, in its own temporary directory.
type Redis struct {
	// URL is redis://127.0.0.1:PORT/0.
	URL string
	// Addr is 127.0.0.1:PORT.
	Addr string

	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// StartRedis starts redis-server on a free loopback port and waits until it answers PING.
// The server keeps no data on disk; maxmemory 64 MiB evicts only keys with a TTL (the cached
// values), never the write generations (which have none).
func StartRedis(ctx context.Context) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	dir, err := os.MkdirTemp("", "vlproxy-redis-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the redis directory: %w", err)
	}
	r := &Redis{dir: dir}
	var lastErr error
	// A port picked by listening and closing may be taken again before redis binds it; retry.
	for range 5 {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		r.URL = "redis://" + r.Addr + "/0"
		if lastErr = r.start(ctx); lastErr == nil {
			return r, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on r.Addr (again, after Kill) and waits for PING.
func (r *Redis) start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, port, _ := net.SplitHostPort(r.Addr)
	logf, err := os.OpenFile(r.dir+"/redis.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create the redis log: %w", err)
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
		"--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cannot start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	r.cmd, r.done, r.log = cmd, done, logf
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := Ping(ctx, r.Addr); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start-up; log: %s", r.Addr, r.LogTail())
		case <-ctx.Done():
			r.killLocked()
			return fmt.Errorf("cannot start redis-server: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.killLocked()
			return fmt.Errorf("redis-server on %s did not answer PING within 10s; log: %s", r.Addr, r.LogTail())
		}
	}
}

// Kill stops the server at once (SIGKILL), as a crash would; Restart brings it back empty on
// the same port.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killLocked()
}

func (r *Redis) killLocked() {
	if r.cmd == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// Restart starts the server again on the same port after Kill (with no data).
func (r *Redis) Restart(ctx context.Context) error { return r.start(ctx) }

// Stop kills the server and removes its directory.
func (r *Redis) Stop() {
	r.Kill()
	os.RemoveAll(r.dir)
}

// LogTail returns the end of the server's log.
func (r *Redis) LogTail() string {
	b, _ := os.ReadFile(r.dir + "/redis.log")
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// Ping sends one RESP PING to addr and checks for +PONG, without a client library.
func Ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot reach redis at %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return fmt.Errorf("cannot send PING to %s: %w", addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("cannot read the PING answer of %s: %w", addr, err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("cannot use redis at %s: PING answered %q", addr, strings.TrimSpace(line))
	}
	return nil
}

// RedisURL returns $VLPROXY_TEST_REDIS_URL, or starts a private redis-server stopped when the
// test ends. Without redis-server it skips the test, unless CI=true or REQUIRE_REDIS=1.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvRedisURL); u != "" {
		return u
	}
	return StartRedisT(t).URL
}

// StartRedisT is StartRedis for a test: a private server, stopped at the test's end, which the
// test may Kill and Restart.
func StartRedisT(t testing.TB) *Redis {
	t.Helper()
	r, err := StartRedis(context.Background())
	if errors.Is(err, ErrNoRedis) && os.Getenv("CI") != "true" && os.Getenv("REQUIRE_REDIS") != "1" {
		t.Skipf("testenv: %v", err)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}
