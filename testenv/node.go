// Package testenv starts a real OpenSearch 2.19 node for vlproxy's tests, benchmarks and demo.
//
// The node is the Java launcher in testenv/opensearch (built from Maven Central jars by
// testenv/build.sh) run in its own JVM: a process group of its own, a fresh home directory, and
// a stdin pipe whose end-of-file makes the JVM exit, so no node outlives the Go process that
// started it, even when that process is killed.
//
// Tests use [Main] from TestMain and [URL] in each test; see the package README for the
// environment variables that select an external cluster instead.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Profile selects the JVM flags of a node.
type Profile string

const (
	// ProfileTest starts fast: 512 MiB heap, SerialGC, C1 only (-XX:TieredStopAtLevel=1),
	// and the AppCDS archive that build.sh dumps. Flags: testenv/opensearch/jvm/test.options.
	ProfileTest Profile = "test"
	// ProfileBench runs fast: 1 GiB heap, G1, full JIT. Use it for benchmarks and the demo.
	// Flags: testenv/opensearch/jvm/bench.options.
	ProfileBench Profile = "bench"
)

// ErrNotBuilt is returned (wrapped) by [Start] when the launcher's jars are missing.
var ErrNotBuilt = errors.New("OpenSearch launcher is not built: run testenv/build.sh")

// Options configure [Start]. The zero value starts a test-profile node on a free port.
type Options struct {
	// Dir is the Maven module: jvm/*.options, and target/ with launcher.jar, lib/, knn/ and
	// cds-test.jsa.
	// Default: $VLPROXY_OPENSEARCH_DIR, else testenv/opensearch under the module root found
	// by walking up from the working directory.
	Dir string
	// Java is the java binary. Default: $VLPROXY_JAVA, else a Java 17 under /usr/lib/jvm,
	// else $JAVA_HOME/bin/java, else java on $PATH.
	Java string
	// HTTPPort is the HTTP port on 127.0.0.1. Default 0: a free port chosen by the kernel at
	// bind time (read back from the node's ports file, so two nodes can never race for one).
	HTTPPort int
	// Profile selects heap size and JIT flags. Default ProfileTest.
	Profile Profile
	// NoKNN leaves the k-NN plugin out even when its jars are built. Default false.
	NoKNN bool
	// Settings are extra node settings (passed as -E key=value). Default none.
	Settings map[string]string
	// JVMArgs are appended after the profile's JVM flags. Default none.
	JVMArgs []string
	// LogPath receives the node's stdout and stderr. Default: node.log in the home directory
	// (removed by Stop).
	LogPath string
	// StartTimeout bounds the wait for yellow health. Default 180s.
	StartTimeout time.Duration
}

// Node is a running OpenSearch node started by [Start].
type Node struct {
	// URL is the node's HTTP address, e.g. "http://127.0.0.1:9200", without a trailing slash.
	URL string
	// Home is the node's home directory (config, data, logs); Stop removes it.
	Home string
	// LogPath is the file holding the node's output.
	LogPath string
	// StartupTime is the time from starting java to yellow health.
	StartupTime time.Duration

	cmd      *exec.Cmd
	stdin    io.WriteCloser
	logFile  *os.File
	done     chan struct{} // closed when the JVM has exited
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// Start launches a node and waits until its cluster health is at least yellow. On failure the
// error includes the tail of the node's log, and nothing is left running.
func Start(ctx context.Context, opts Options) (*Node, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkBuilt(opts.Dir); err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "vlproxy-opensearch-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the node's home directory: %w", err)
	}
	n := &Node{Home: home, LogPath: opts.LogPath, done: make(chan struct{})}
	if n.LogPath == "" {
		n.LogPath = filepath.Join(home, "node.log")
	}
	if n.logFile, err = os.Create(n.LogPath); err != nil {
		os.RemoveAll(home)
		return nil, fmt.Errorf("cannot create the node log: %w", err)
	}

	n.cmd = exec.Command(opts.Java, javaArgs(opts, home)...)
	n.cmd.Dir = home
	n.cmd.Stdout = n.logFile
	n.cmd.Stderr = n.logFile
	// Own process group: Ctrl-C in a terminal does not reach the JVM directly (it exits through
	// the stdin watchdog instead, after the Go side cleaned up), and Stop can kill the group.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		n.cleanup()
		return nil, fmt.Errorf("cannot create the node's stdin pipe: %w", err)
	}
	began := time.Now()
	if err := n.cmd.Start(); err != nil {
		n.cleanup()
		return nil, fmt.Errorf("cannot start %s: %w", opts.Java, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := n.waitReady(ctx); err != nil {
		tail := n.LogTail(4096)
		n.Stop()
		return nil, fmt.Errorf("cannot start OpenSearch (log %s): %w\n--- node log tail ---\n%s", n.LogPath, err, tail)
	}
	n.StartupTime = time.Since(began)
	return n, nil
}

// PID is the JVM's process id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Done is closed when the JVM has exited, for whatever reason.
func (n *Node) Done() <-chan struct{} { return n.done }

// Stop shuts the node down: it closes stdin (the launcher's watchdog exits), sends SIGTERM,
// waits up to 30s, then SIGKILLs the process group, and removes the home directory (a LogPath
// outside it is kept). Stop is idempotent and safe to call concurrently.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	if n.cmd != nil && n.cmd.Process != nil {
		n.stdin.Close()
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
		}
		// Whatever is left of the group (the JVM itself if it ignored us) goes now.
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
	return n.cleanup()
}

func (n *Node) cleanup() error {
	if n.logFile != nil {
		n.logFile.Close()
	}
	if n.stdin != nil && (n.cmd == nil || n.cmd.Process == nil) {
		n.stdin.Close()
	}
	if err := os.RemoveAll(n.Home); err != nil {
		return fmt.Errorf("cannot remove the node home %s: %w", n.Home, err)
	}
	return nil
}

// LogTail returns up to max bytes from the end of the node log.
func (n *Node) LogTail(max int64) string {
	f, err := os.Open(n.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read the node log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read the node log: %v)", err)
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b)
}

// waitReady waits for the ports file, then for yellow health.
func (n *Node) waitReady(ctx context.Context) error {
	portsFile := filepath.Join(n.Home, "logs", "http.ports")
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return fmt.Errorf("the JVM exited before the node was ready: %v", n.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("cannot reach yellow health: %w", ctx.Err())
		case <-tick.C:
		}
		if n.URL == "" {
			b, err := os.ReadFile(portsFile)
			// The file may be caught half written: only a parsable address counts.
			addr := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
			if err != nil || !validHostPort(addr) {
				continue
			}
			n.URL = "http://" + addr
		}
		if healthy(ctx, client, n.URL) {
			return nil
		}
	}
}

func validHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return false
	}
	p, err := strconv.Atoi(s[i+1:])
	return err == nil && p > 0
}

// healthy reports whether the cluster is yellow or green.
func healthy(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_cluster/health?wait_for_status=yellow&timeout=1s", nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK &&
		(bytes.Contains(b, []byte(`"status":"yellow"`)) || bytes.Contains(b, []byte(`"status":"green"`)))
}
