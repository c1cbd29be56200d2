package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClusterOptions configure [StartCluster].
type ClusterOptions struct {
	// Nodes is the number of nodes. Default 2.
	Nodes int
	// Node is the template of every node's Options (Dir, Java, Profile, NoKNN, JVMArgs,
	// Settings, StartTimeout); HTTPPort and LogPath are per node and ignored here.
	Node Options
}

// Cluster is a multi-node OpenSearch cluster on loopback started by [StartCluster].
//
// Node 0 is the only cluster-manager-eligible node (it bootstraps the cluster alone); the others
// are data+ingest nodes that join it through discovery.seed_hosts set to node 0's transport
// address. So any node but node 0 can be killed and the cluster keeps its elected manager: a
// two-node cluster of two manager-eligible nodes would lose its quorum with either of them.
type Cluster struct {
	// Name is the cluster name, unique per cluster (vlproxy-test-<random>), so that a node of
	// another test cluster on this machine can never join it.
	Name string
	// Nodes are the running nodes, node 0 first.
	Nodes []*Node
}

// StartCluster starts opts.Nodes nodes on 127.0.0.1 with free ports and waits until every node
// has joined (cluster health reports them all). On failure nothing is left running.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.Nodes < 1 {
		return nil, fmt.Errorf("cannot start a cluster of %d nodes", opts.Nodes)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	c := &Cluster{Name: ClusterName + "-" + hex.EncodeToString(rnd[:])}
	fail := func(err error) (*Cluster, error) {
		c.Stop()
		return nil, err
	}
	var seed string
	for i := range opts.Nodes {
		o := opts.Node
		o.HTTPPort, o.LogPath = 0, ""
		o.Settings = map[string]string{}
		for k, v := range opts.Node.Settings {
			o.Settings[k] = v
		}
		name := "node-" + strconv.Itoa(i)
		// These override the launcher's single-node defaults (-E settings are applied last).
		o.Settings["cluster.name"] = c.Name
		o.Settings["node.name"] = name
		o.Settings["discovery.type"] = "zen"
		if i == 0 {
			o.Settings["cluster.initial_cluster_manager_nodes"] = name
		} else {
			o.Settings["node.roles"] = "data,ingest"
			o.Settings["discovery.seed_hosts"] = seed
		}
		n, err := Start(ctx, o)
		if err != nil {
			return fail(fmt.Errorf("cannot start %s of cluster %s: %w", name, c.Name, err))
		}
		c.Nodes = append(c.Nodes, n)
		if i == 0 {
			if seed, err = n.TransportAddr(); err != nil {
				return fail(err)
			}
		}
	}
	if err := c.WaitNodes(ctx, opts.Nodes, 2*time.Minute); err != nil {
		return fail(err)
	}
	return c, nil
}

// URLs returns the HTTP base URLs of the nodes, node 0 first.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL
	}
	return out
}

// WaitNodes waits until node 0 reports n nodes in the cluster (at least yellow health).
func (c *Cluster) WaitNodes(ctx context.Context, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	url := c.Nodes[0].URL + "/_cluster/health?wait_for_nodes=" + strconv.Itoa(n) + "&wait_for_status=yellow&timeout=5s"
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("cannot build a health request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot see %d nodes in cluster %s (last answer: %s): %w\n--- node-0 log tail ---\n%s",
				n, c.Name, last, ctx.Err(), c.Nodes[0].LogTail(4096))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops every node (see [Node.Stop]) and returns the first error.
func (c *Cluster) Stop() error {
	var first error
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		if err := c.Nodes[i].Stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TransportAddr returns the node's transport address (host:port), read from the ports file the
// node writes once bound.
func (n *Node) TransportAddr() (string, error) {
	b, err := os.ReadFile(filepath.Join(n.Home, "logs", "transport.ports"))
	if err != nil {
		return "", fmt.Errorf("cannot read the node's transport address: %w", err)
	}
	addr := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if !validHostPort(addr) {
		return "", fmt.Errorf("cannot parse the node's transport address %q", addr)
	}
	return addr, nil
}

// Kill sends SIGKILL to the JVM (kill -9: no shutdown hook, no flush) and waits until it has
// exited. Stop must still be called to remove the home directory.
func (n *Node) Kill() error {
	if n.cmd == nil || n.cmd.Process == nil {
		return errors.New("cannot kill a node that was not started")
	}
	if err := syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cannot kill the node (pid %d): %w", n.cmd.Process.Pid, err)
	}
	select {
	case <-n.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cannot see the node (pid %d) exit after SIGKILL", n.cmd.Process.Pid)
	}
}
