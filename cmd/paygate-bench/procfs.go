package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ, which
// is 100 on every Linux this runs on (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// procStat holds the fields of /proc/PID/stat the bench reads.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime
}

// readProcStat parses /proc/PID/stat. The command name may contain spaces and
// parentheses, so fields are counted after the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat: %w", err)
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse stat: no ')'")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("parse stat: %d fields", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse stat stime: %w", err)
	}
	return procStat{ppid: ppid, cpu: time.Duration(ut+st) * clockTick}, nil
}

// processTree returns root and its direct children (nginx: master and workers).
func processTree(root int) []int {
	pids := []int{root}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		st, err := readProcStat(pid)
		if err == nil && st.ppid == root {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuOf sums utime+stime over pids; processes that vanished count zero.
func cpuOf(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		if st, err := readProcStat(p); err == nil {
			d += st.cpu
		}
	}
	return d
}

// statusBytes reads a "Key:   N kB" line of /proc/PID/status, in bytes.
func statusBytes(pid int, key string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return parseStatusBytes(b, key)
}

func parseStatusBytes(b []byte, key string) (uint64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse status %s: %q", key, line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse status %s: %w", key, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status has no %s", key)
}

// memOf sums a status field over pids (nginx: master plus workers; shared
// pages count once per process, which overstates nginx slightly).
func memOf(pids []int, key string) uint64 {
	var n uint64
	for _, p := range pids {
		if v, err := statusBytes(p, key); err == nil {
			n += v
		}
	}
	return n
}

// resetPeakRSS sets VmHWM back to the current RSS (clear_refs value 5), so
// that a later VmHWM is the peak of what came after.
func resetPeakRSS(pids []int) error {
	for _, p := range pids {
		if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(p), "clear_refs"), []byte("5"), 0); err != nil {
			return fmt.Errorf("reset peak rss of %d: %w", p, err)
		}
	}
	return nil
}

// systemBusy is the CPU time all processes spent outside idle and iowait,
// from the first line of /proc/stat.
func systemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseSystemBusy(b)
}

func parseSystemBusy(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: %q", line)
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
