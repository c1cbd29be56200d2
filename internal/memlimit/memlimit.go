// Package memlimit decides the Go soft memory limit (runtime/debug.SetMemoryLimit) of a
// process from its cgroup's memory limit, so that the garbage collector works harder before
// the kernel's OOM killer ends the process. It reads cgroup v2 memory.max or, where the
// memory controller is mounted as v1 (hybrid hosts), memory.limit_in_bytes.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// unlimitedV1 is the smallest value cgroup v1 reports for "no limit" (PAGE_COUNTER_MAX pages,
// rounded down to the page size: 9223372036854771712 with 4 KiB pages); anything at least this
// large cannot be a real limit.
const unlimitedV1 = 1 << 62

// Cgroup returns the memory limit that applies to the process, in bytes: the smallest limit of
// its cgroup and of the cgroup's ancestors up to the root of the mount (a parent's limit binds
// its children), and the file it came from. It returns 0 when nothing limits the process.
// fsys is the root file system (os.DirFS("/")): /proc/self/cgroup names the cgroup and
// /proc/self/mountinfo where its hierarchy is mounted.
func Cgroup(fsys fs.FS) (limit int64, file string, err error) {
	cg, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return 0, "", fmt.Errorf("cannot read the process's cgroup: %w", err)
	}
	v1Path, v2Path, hasV1, hasV2 := parseCgroup(cg)
	if !hasV1 && !hasV2 {
		return 0, "", errors.New("cannot find a memory cgroup in /proc/self/cgroup")
	}
	mi, err := fs.ReadFile(fsys, "proc/self/mountinfo")
	if err != nil {
		return 0, "", fmt.Errorf("cannot read the mounts: %w", err)
	}
	// The v1 memory controller, when the process is in one, is where its limit is (on a
	// hybrid host the v2 hierarchy has no memory controller).
	cgPath, name, v1 := v2Path, "memory.max", false
	if hasV1 {
		cgPath, name, v1 = v1Path, "memory.limit_in_bytes", true
	}
	root, mnt, ok := findMount(mi, v1)
	if !ok {
		return 0, "", fmt.Errorf("cannot find the cgroup mount of %s in /proc/self/mountinfo", name)
	}
	dir := mnt
	if rel, ok := strings.CutPrefix(cgPath, root); ok {
		dir = path.Join(mnt, rel)
	}
	for {
		f := path.Join(dir, name)
		if l, ok := readLimit(fsys, f); ok && (limit == 0 || l < limit) {
			limit, file = l, "/"+f
		}
		if dir == mnt || !strings.HasPrefix(dir, mnt) {
			return limit, file, nil
		}
		dir = path.Dir(dir)
	}
}

// parseCgroup reads /proc/self/cgroup lines "id:controllers:path": the path of the v1 memory
// controller and of the v2 unified hierarchy (id 0, no controllers).
func parseCgroup(b []byte) (v1, v2 string, hasV1, hasV2 bool) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		parts := strings.SplitN(string(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, hasV2 = parts[2], true
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "memory" {
				v1, hasV1 = parts[2], true
			}
		}
	}
	return v1, v2, hasV1, hasV2
}

// findMount finds the mount of the v1 memory controller (v1) or of cgroup2 in mountinfo
// ("id parent major:minor root mountpoint options ... - fstype source superoptions") and
// returns its root in the hierarchy and its mount point, without the leading slash.
func findMount(b []byte, v1 bool) (root, mnt string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+3 > len(f) {
			continue
		}
		fstype := f[sep+1]
		match := fstype == "cgroup2" && !v1
		if v1 && fstype == "cgroup" && sep+3 < len(f) {
			for o := range strings.SplitSeq(f[sep+3], ",") {
				match = match || o == "memory"
			}
		}
		if match {
			return f[3], strings.TrimPrefix(path.Clean(f[4]), "/"), true
		}
	}
	return "", "", false
}

// readLimit reads one limit file: a number of bytes, or "max" (v2) or a huge number (v1) for
// none. ok is false when the file is missing, unreadable or says no limit.
func readLimit(fsys fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimitedV1 {
		return 0, false
	}
	return n, true
}

// Decision is the soft memory limit chosen and why.
type Decision struct {
	// Limit is the soft limit in bytes; 0 means none is set (the runtime's default, no limit).
	Limit int64 `json:"limit_bytes"`
	// Source says where it comes from: "GOMEMLIMIT", "cgroup", "flag" or "none".
	Source string `json:"source"`
	// Cgroup is the cgroup's memory limit (0: none or not found) and CgroupFile the file it
	// was read from.
	Cgroup     int64  `json:"cgroup_limit_bytes"`
	CgroupFile string `json:"cgroup_file,omitempty"`
	// Note says why no cgroup limit was found, when reading it failed.
	Note string `json:"note,omitempty"`
}

// Decide chooses the soft memory limit. When GOMEMLIMIT is set (gomemlimit) it wins: the
// runtime has applied it already, and the Decision says so with Limit 0 (Apply reads the
// runtime's). Otherwise spec decides: "N%" is N percent of the cgroup's memory limit (no limit
// when the cgroup has none), a byte size (parse reads "2GiB" and the like) is that limit, and
// "0" is no limit.
func Decide(spec string, gomemlimit bool, fsys fs.FS, parse func(string) (int64, error)) (Decision, error) {
	var d Decision
	var cgErr error
	d.Cgroup, d.CgroupFile, cgErr = Cgroup(fsys)
	if cgErr != nil {
		d.Note = cgErr.Error()
	}
	if gomemlimit {
		d.Source = "GOMEMLIMIT"
		return d, nil
	}
	pct, n, err := ParseSpec(spec, parse)
	if err != nil {
		return d, err
	}
	switch {
	case pct > 0 && d.Cgroup > 0:
		d.Limit, d.Source = int64(math.Floor(float64(d.Cgroup)*pct/100)), "cgroup"
	case n > 0:
		d.Limit, d.Source = n, "flag"
	default:
		d.Source = "none"
	}
	return d, nil
}

// ParseSpec reads a limit spec: "N%" gives pct (0 < N <= 100), anything else is a byte size
// read by parse (0: no limit).
func ParseSpec(spec string, parse func(string) (int64, error)) (pct float64, n int64, err error) {
	spec = strings.TrimSpace(spec)
	if p, ok := strings.CutSuffix(spec, "%"); ok {
		pct, err = strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || pct <= 0 || pct > 100 {
			return 0, 0, fmt.Errorf("cannot parse memory limit %q: want a percentage in (0, 100], a byte size or 0", spec)
		}
		return pct, 0, nil
	}
	if n, err = parse(spec); err != nil || n < 0 {
		return 0, 0, fmt.Errorf("cannot parse memory limit %q: want a percentage such as 90%%, a byte size or 0", spec)
	}
	return 0, n, nil
}

// Apply decides (see Decide, with GOMEMLIMIT from getenv) and sets the limit with
// debug.SetMemoryLimit. Under GOMEMLIMIT the Decision carries the runtime's limit (0 for "off").
func Apply(spec string, getenv func(string) string, fsys fs.FS, parse func(string) (int64, error)) (Decision, error) {
	d, err := Decide(spec, getenv("GOMEMLIMIT") != "", fsys, parse)
	if err != nil {
		return d, err
	}
	switch d.Source {
	case "GOMEMLIMIT":
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			d.Limit = l
		}
	case "none":
		// The runtime's default: no soft limit.
	default:
		debug.SetMemoryLimit(d.Limit)
	}
	return d, nil
}
