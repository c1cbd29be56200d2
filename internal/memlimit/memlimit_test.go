package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
	"testing/fstest"
)

// v2Mounts and hybridMounts are /proc/self/mountinfo of a cgroup v2 host (or container) and of
// a hybrid host with the v1 memory controller beside an empty cgroup2 mount.
const (
	v2Mounts = `22 27 0:21 / /proc rw,nosuid - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
)

func TestCgroup(t *testing.T) {
	f := func(name string, files map[string]string, want int64, wantFile string) {
		t.Helper()
		fsys := fstest.MapFS{}
		for p, body := range files {
			fsys[p] = &fstest.MapFile{Data: []byte(body)}
		}
		got, file, err := Cgroup(fsys)
		if err != nil || got != want || file != wantFile {
			t.Fatalf("%s: %d from %q (err %v), want %d from %q", name, got, file, err, want, wantFile)
		}
	}
	// A container with its own cgroup namespace: the limit is at the mount's root.
	f("v2 container", map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"proc/self/mountinfo":      v2Mounts,
		"sys/fs/cgroup/memory.max": "536870912\n",
	}, 512<<20, "/sys/fs/cgroup/memory.max")
	f("v2 unlimited", map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"proc/self/mountinfo":      v2Mounts,
		"sys/fs/cgroup/memory.max": "max\n",
	}, 0, "")
	// A systemd service under a slice: the tighter of the service's and the slice's limits.
	f("v2 nested, parent tighter", map[string]string{
		"proc/self/cgroup":    "0::/system.slice/vlproxy.service\n",
		"proc/self/mountinfo": v2Mounts,
		"sys/fs/cgroup/system.slice/vlproxy.service/memory.max": "max\n",
		"sys/fs/cgroup/system.slice/memory.max":                 "1073741824\n",
	}, 1<<30, "/sys/fs/cgroup/system.slice/memory.max")
	f("v2 nested, child tighter", map[string]string{
		"proc/self/cgroup":    "0::/system.slice/vlproxy.service\n",
		"proc/self/mountinfo": v2Mounts,
		"sys/fs/cgroup/system.slice/vlproxy.service/memory.max": "268435456\n",
		"sys/fs/cgroup/system.slice/memory.max":                 "1073741824\n",
	}, 256<<20, "/sys/fs/cgroup/system.slice/vlproxy.service/memory.max")
	// This machine's shape: hybrid, the v1 memory controller, "unlimited" as a huge number.
	f("v1 hybrid unlimited", map[string]string{
		"proc/self/cgroup":    "4:memory:/process_api/06e8\n1:cpu:/\n0::/\n",
		"proc/self/mountinfo": hybridMounts,
		"sys/fs/cgroup/memory/process_api/06e8/memory.limit_in_bytes": "9223372036854771712\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":                  "9223372036854771712\n",
	}, 0, "")
	f("v1 hybrid limited", map[string]string{
		"proc/self/cgroup":    "4:memory:/process_api/06e8\n1:cpu:/\n0::/\n",
		"proc/self/mountinfo": hybridMounts,
		"sys/fs/cgroup/memory/process_api/06e8/memory.limit_in_bytes": "2147483648\n",
		"sys/fs/cgroup/unified/memory.max":                            "1048576\n", // not the memory controller
	}, 2<<30, "/sys/fs/cgroup/memory/process_api/06e8/memory.limit_in_bytes")
	// A v1 container without a cgroup namespace: the path is the host's, the mount's root too.
	f("v1 container", map[string]string{
		"proc/self/cgroup":                           "9:memory:/docker/abc\n",
		"proc/self/mountinfo":                        "50 40 0:40 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes": "104857600\n",
	}, 100<<20, "/sys/fs/cgroup/memory/memory.limit_in_bytes")

	if _, _, err := Cgroup(fstest.MapFS{}); err == nil {
		t.Fatal("no /proc: no error")
	}
}

func TestDecide(t *testing.T) {
	container := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"proc/self/mountinfo":      {Data: []byte(v2Mounts)},
		"sys/fs/cgroup/memory.max": {Data: []byte("1000000000\n")},
	}
	unlimited := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"proc/self/mountinfo":      {Data: []byte(v2Mounts)},
		"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
	}
	parse := func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
	f := func(spec string, env bool, fsys fstest.MapFS, limit int64, source string) {
		t.Helper()
		d, err := Decide(spec, env, fsys, parse)
		if err != nil || d.Limit != limit || d.Source != source {
			t.Fatalf("%q (GOMEMLIMIT %v): %+v, %v; want %d from %s", spec, env, d, err, limit, source)
		}
	}
	f("90%", false, container, 900000000, "cgroup")
	f("50%", false, container, 500000000, "cgroup")
	f("90%", false, unlimited, 0, "none")
	f("90%", false, fstest.MapFS{}, 0, "none") // no cgroup found: no limit
	f("123456", false, container, 123456, "flag")
	f("0", false, container, 0, "none")
	f("90%", true, container, 0, "GOMEMLIMIT")
	for _, bad := range []string{"0%", "101%", "x%", "lots"} {
		if _, err := Decide(bad, false, container, parse); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestApplySetsTheRuntimeLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	fsys := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"proc/self/mountinfo":      {Data: []byte(v2Mounts)},
		"sys/fs/cgroup/memory.max": {Data: []byte("4000000000\n")},
	}
	parse := func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
	noEnv := func(string) string { return "" }
	if d, err := Apply("90%", noEnv, fsys, parse); err != nil || d.Limit != 3600000000 || debug.SetMemoryLimit(-1) != 3600000000 {
		t.Fatalf("90%% of 4 GB: %+v %v, runtime %d", d, err, debug.SetMemoryLimit(-1))
	}
	// GOMEMLIMIT set: the runtime's limit stays and is reported.
	debug.SetMemoryLimit(1 << 30)
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return os.Getenv(k)
	}
	if d, err := Apply("90%", env, fsys, parse); err != nil || d.Source != "GOMEMLIMIT" || d.Limit != 1<<30 || debug.SetMemoryLimit(-1) != 1<<30 {
		t.Fatalf("under GOMEMLIMIT: %+v %v, runtime %d", d, err, debug.SetMemoryLimit(-1))
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if d, _ := Apply("0", noEnv, fsys, parse); d.Source != "none" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("0: %+v, runtime %d", d, debug.SetMemoryLimit(-1))
	}
}
