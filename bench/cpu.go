package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on every Linux we run on).
const clockTick = 100

// ProcCPU returns the CPU time (user+system) used so far by pid and all its live descendants
// (nginx's workers are children of the pid given).
func ProcCPU(pid int) (time.Duration, error) {
	own, _, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	total := own
	for _, c := range descendants(pid) {
		t, _, err := readStat(c)
		if err == nil {
			total += t
		}
	}
	return total, nil
}

func readStat(pid int) (cpu time.Duration, ppid int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read CPU time of pid %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("cannot parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("cannot parse utime/stime in /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, ppid, nil
}

func descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, err := readStat(pid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// PeakRSS returns the peak resident set size (VmHWM) of pid plus that of its live descendants,
// in bytes: an upper bound of the tree's peak, exact for a single process.
func PeakRSS(pid int) (int64, error) {
	total, err := readHWM(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range descendants(pid) {
		if v, err := readHWM(c); err == nil {
			total += v
		}
	}
	return total, nil
}

func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("cannot read memory of pid %d: %w", pid, err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("cannot parse VmHWM in /proc/%d/status", pid)
}
