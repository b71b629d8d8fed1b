package compat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
)

// TestPodmanAndDocker runs run.sh, which prints one line per check and
// "N passed, N failed" last.
func TestPodmanAndDocker(t *testing.T) {
	if os.Getenv("BERTH_COMPAT") != "1" {
		t.Skip("set BERTH_COMPAT=1 to run tests/compat/run.sh: it is slow, installs podman and docker.io, and starts a dockerd")
	}
	testutil.RequiresRoot(t)
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		// Leave the script time to clean up before the test binary dies.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-90*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", "run.sh")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 80 * time.Second
	last, err := runLogged(t, cmd)
	passed, failed, perr := parseSummary(last)
	if perr != nil {
		t.Fatalf("run.sh: %v (exit: %v)", perr, err)
	}
	if failed > 0 || err != nil {
		t.Errorf("run.sh: %d passed, %d failed (exit: %v)", passed, failed, err)
	}
	if passed == 0 {
		t.Errorf("run.sh ran no check")
	}
}

// runLogged runs cmd with its output, stdout and stderr together, logged
// line by line, and returns the last line.
func runLogged(t *testing.T, cmd *exec.Cmd) (last string, err error) {
	t.Helper()
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start run.sh: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		w.Close()
		done <- err
	}()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		last = sc.Text()
		t.Log(last)
	}
	io.Copy(io.Discard, r)
	return last, <-done
}

var summary = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

// parseSummary reads run.sh's last line, "N passed, N failed".
func parseSummary(line string) (passed, failed int, err error) {
	m := summary.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, fmt.Errorf("last line %q is not \"N passed, N failed\"", line)
	}
	passed, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	return passed, failed, nil
}

func TestParseSummary(t *testing.T) {
	for _, tc := range []struct {
		line           string
		passed, failed int
		ok             bool
	}{
		{"47 passed, 4 failed", 47, 4, true},
		{"0 passed, 0 failed", 0, 0, true},
		{"failed: docker/oom", 0, 0, false},
		{"47 passed, 4 failed ", 0, 0, false},
		{"", 0, 0, false},
	} {
		passed, failed, err := parseSummary(tc.line)
		if (err == nil) != tc.ok || passed != tc.passed || failed != tc.failed {
			t.Errorf("parseSummary(%q) = %d, %d, %v; want %d, %d, ok %v", tc.line, passed, failed, err, tc.passed, tc.failed, tc.ok)
		}
	}
}
