package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procStat holds the fields of /proc/<pid>/stat the runtime needs.
type procStat struct {
	State     byte
	StartTime uint64
}

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command field", pid)
	}
	fields := bytes.Fields(data[i+2:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat start time: %w", pid, err)
	}
	return procStat{State: fields[0][0], StartTime: start}, nil
}

// alive reports whether pid is the process that started at startTime and
// has not exited (a zombie counts as exited).
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readProcStat(pid)
	if err != nil {
		return false
	}
	return st.StartTime == startTime && st.State != 'Z' && st.State != 'X'
}

// waitGone waits until pid is no longer the process that started at
// startTime, up to timeout. It uses a pidfd where it can, which wakes on exit
// without polling.
func waitGone(pid int, startTime uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		defer unix.Close(fd)
		if alive(pid, startTime) {
			ms := int(time.Until(deadline) / time.Millisecond)
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for ms > 0 {
				_, err := unix.Poll(fds, ms)
				if !errors.Is(err, unix.EINTR) {
					break
				}
				ms = int(time.Until(deadline) / time.Millisecond)
			}
		}
	}
	for {
		if !alive(pid, startTime) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %s", pid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
