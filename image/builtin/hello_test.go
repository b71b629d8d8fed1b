package builtin

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"berth.dev/internal/errdefs"
)

// runExecutable writes exe to a temp file and runs it, natively when it is
// for the host's architecture, else under qemu-user (skipped without it).
// stdout is where its output goes; nil collects it.
func runExecutable(t *testing.T, arch string, exe []byte, stdout *os.File) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(p, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p)
	if arch != runtime.GOARCH {
		qemu, err := exec.LookPath(map[string]string{"amd64": "qemu-x86_64-static", "arm64": "qemu-aarch64-static"}[arch])
		if err != nil {
			t.Skipf("no qemu-user for %s (apt-get install qemu-user-static): %v", arch, err)
		}
		cmd = exec.Command(qemu, p)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	return out.String(), err
}

func TestHelloExecutableRuns(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			exe, err := helloExecutable(arch, helloMessage)
			if err != nil {
				t.Fatal(err)
			}
			if len(exe) > 1024 {
				t.Errorf("hello executable is %d bytes, want a few hundred", len(exe))
			}
			out, err := runExecutable(t, arch, exe, nil)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if out != helloMessage {
				t.Errorf("output:\n%s\nwant:\n%s", out, helloMessage)
			}
		})
	}
}

// A large message (60000 bytes, most of a pipe's buffer) arrives whole.
// The executable's loop over short writes is for writes a signal cuts
// short, which no test provokes.
func TestHelloExecutableLongMessage(t *testing.T) {
	msg := string(bytes.Repeat([]byte("berth\n"), 10000)) // 60000 bytes
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			exe, err := helloExecutable(arch, msg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := runExecutable(t, arch, exe, nil)
			if err != nil || out != msg {
				t.Fatalf("run: %v; got %d bytes, want %d", err, len(out), len(msg))
			}
		})
	}
}

// When stdout cannot be written, the executable exits 1 instead of
// claiming success.
func TestHelloExecutableWriteFails(t *testing.T) {
	ro, err := os.Open(os.DevNull) // read-only: write(1) fails with EBADF
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			exe, err := helloExecutable(arch, helloMessage)
			if err != nil {
				t.Fatal(err)
			}
			_, err = runExecutable(t, arch, exe, ro)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("run with a read-only stdout: %v, want exit status 1", err)
			}
		})
	}
}

func TestHelloExecutableIsMinimalStaticELF(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		t.Run(tc.arch, func(t *testing.T) {
			exe, err := helloExecutable(tc.arch, helloMessage)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(exe))
			if err != nil {
				t.Fatalf("not ELF: %v", err)
			}
			if f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC || f.Machine != tc.machine {
				t.Errorf("class %v type %v machine %v", f.Class, f.Type, f.Machine)
			}
			if len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Filesz != uint64(len(exe)) {
				t.Fatalf("want one PT_LOAD of the whole file, have %+v", f.Progs)
			}
			p := f.Progs[0]
			if f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Filesz || p.Flags != elf.PF_R|elf.PF_X {
				t.Errorf("entry %#x outside the R+X segment %#x+%#x (%v)", f.Entry, p.Vaddr, p.Filesz, p.Flags)
			}
		})
	}
}

func TestHelloExecutableUnsupportedArch(t *testing.T) {
	for _, arch := range []string{"riscv64", "386", "s390x"} {
		if _, err := helloExecutable(arch, helloMessage); !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Errorf("helloExecutable(%s) = %v, want ErrNotImplemented", arch, err)
		}
	}
}

// The real test of the image: the /hello of the archive runs on this host
// and prints the greeting.
func TestHelloWorldImageRuns(t *testing.T) {
	l := loadArchive(t, archiveOf(t, HelloWorld))
	m := layerFile(t, l.layerTar, "hello")
	if m.hdr.Mode != 0o755 {
		t.Errorf("/hello mode %o, want 755", m.hdr.Mode)
	}
	if got := len(readTar(t, l.layerTar)); got != 1 {
		t.Errorf("layer has %d entries, want only /hello", got)
	}
	out, err := runExecutable(t, runtime.GOARCH, m.data, nil)
	if err != nil {
		t.Fatalf("run /hello: %v", err)
	}
	if out != helloMessage {
		t.Errorf("/hello printed:\n%s\nwant:\n%s", out, helloMessage)
	}
}
