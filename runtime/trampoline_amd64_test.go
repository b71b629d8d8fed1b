package runtime

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// trampolineSetup makes, in a temp dir, a fifo, opens it with O_PATH (to
// be the child's descriptor 3, its ExtraFiles[0]) and writes the
// trampoline for descriptor 3.
func trampolineSetup(t *testing.T) (dir, fifo string, path *os.File, exe string) {
	t.Helper()
	dir = t.TempDir()
	fifo = filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	path, err := os.OpenFile(fifo, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { path.Close() })
	exe = filepath.Join(dir, "trampoline")
	if err := os.WriteFile(exe, trampolineELF(3), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, fifo, path, exe
}

// The trampoline waits for a reader of the fifo, tells it with one byte, and
// executes the program with the argv and environment it was given.
func TestTrampoline(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	_, fifo, path, exe := trampolineSetup(t)
	var out bytes.Buffer
	cmd := exec.Command(exe, "-c", `echo "$0 $X$P"; tr '\0' ' ' </proc/$$/cmdline; echo; [ -e /proc/$$/fd/3 ] && echo fd 3 open; true`, "arg1")
	// argv[0] passes unchanged (not the path; busybox picks its applet
	// by it).
	cmd.Args[0] = "sh"
	cmd.Env = []string{"X=env", "P=" + sh}
	cmd.ExtraFiles = []*os.File{path}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(fifo) // unblocks the trampoline's open
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	n, _ := r.Read(b)
	r.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if n != 1 || b[0] != 0 {
		t.Errorf("fifo gave %q, want one zero byte", b[:n])
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// P is gone from the environment.
	want := []string{"arg1 env", "sh -c " + cmd.Args[2] + " arg1"}
	if len(lines) != 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Errorf("program printed %q, want %q (argv and environment passed on, descriptor 3 closed)", lines, want)
	}
}

// Run again by a script naming /proc/self/exe as its interpreter, the
// trampoline finds its fifo closed and fails instead of looping.
func TestTrampolineRunsOnce(t *testing.T) {
	dir, fifo, path, exe := trampolineSetup(t)
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(exe)
	cmd.Env = []string{"P=" + script}
	cmd.ExtraFiles = []*os.File{path}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Fatalf("second run: %v, want exit status 127: %s", err, out.String())
	}
	if !strings.Contains(out.String(), "exec of the container's program failed") {
		t.Errorf("message: %q", out.String())
	}
}
