package engine_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/testutil"
	"berth.dev/tests/enginetest"
)

// debianCache is where a Debian minbase root filesystem is kept between
// runs (bench/pull.sh uses the same one); rootfs.done marks it complete.
const debianCache = "/var/cache/berth-bench"

// debianRootfs returns a debootstrap --variant=minbase bookworm root
// filesystem, made once into debianCache. The test is skipped when
// debootstrap is missing or cannot reach Debian's mirror.
func debianRootfs(t *testing.T) string {
	t.Helper()
	rootfs := filepath.Join(debianCache, "rootfs")
	if _, err := os.Stat(filepath.Join(debianCache, "rootfs.done")); err == nil {
		return rootfs
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("needs debootstrap (apt-get install debootstrap)")
	}
	os.RemoveAll(rootfs)
	if err := os.MkdirAll(debianCache, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("debootstrap", "--variant=minbase", "bookworm", rootfs, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		os.RemoveAll(rootfs)
		t.Skipf("debootstrap could not make a Debian root filesystem (no mirror?): %v\n%s", err, lastLines(out, 5))
	}
	// apt's downloads and package lists are not part of an image.
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages", "var/lib/apt/lists/*_InRelease"} {
		files, _ := filepath.Glob(filepath.Join(rootfs, pattern))
		for _, f := range files {
			os.Remove(f)
		}
	}
	if err := os.WriteFile(filepath.Join(debianCache, "rootfs.done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// The lecture's demo, with berth and then with the docker CLI against
// berthd: a shell in a Debian image writes a file; commit makes an image
// whose history has the new layer on top of Debian's; a container of the
// committed image sees the file; rm and rmi take both away, and the base
// image stays.
func TestLectureDemo(t *testing.T) {
	testutil.RequiresRoot(t)
	rootfs := debianRootfs(t)
	d := enginetest.Start(t, bin, "")

	// The Debian image, imported from a tar of the root filesystem.
	importDebian(t, d, rootfs, "berth-test-debian:bookworm", "-m", "debootstrap bookworm minbase")

	type cli func(args ...string) (string, string, int)
	for _, tc := range []struct {
		name string
		run  cli
	}{
		{"berth", d.Berth},
		{"docker", d.Docker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must := func(args ...string) string {
				t.Helper()
				out, errOut, code := tc.run(args...)
				if code != 0 {
					t.Fatalf("%s %s: exit %d: %s", tc.name, strings.Join(args, " "), code, errOut)
				}
				return out
			}
			demo := "berth-test-demo-" + tc.name
			img := "berth-test-demo-" + tc.name + ":v1"
			// A shell, as run -it would give; the commands come from -c so
			// that the test needs no terminal (TestRunInteractiveTTY
			// drives one).
			must("run", "--name", demo, "berth-test-debian:bookworm", "bash", "-c", "echo hello from the lecture > /root/file && cat /etc/debian_version")
			if diff := must("diff", demo); !strings.Contains(diff, "A /root/file") {
				t.Errorf("diff:\n%s", diff)
			}
			must("commit", "-m", "add /root/file", demo, img)
			hist := strings.Split(strings.TrimSpace(must("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", img)), "\n")
			base := strings.Split(strings.TrimSpace(must("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "berth-test-debian:bookworm")), "\n")
			if len(hist) != len(base)+1 || !strings.Contains(hist[0], "|add /root/file") || strings.Contains(hist[0], "|0B|") {
				t.Errorf("history of the commit:\n%s\nof the base:\n%s", strings.Join(hist, "\n"), strings.Join(base, "\n"))
			}
			if got := must("run", "--rm", img, "cat", "/root/file"); got != "hello from the lecture\n" {
				t.Errorf("the committed image's file: %q", got)
			}
			must("rm", demo)
			must("rmi", img)
			if _, _, code := tc.run("image", "inspect", img); code == 0 {
				t.Errorf("%s still there after rmi", img)
			}
			must("image", "inspect", "berth-test-debian:bookworm")
		})
	}
	d.MustBerth("rmi", "berth-test-debian:bookworm")
}

// importDebian imports the cached Debian root filesystem as image name;
// opts go to berth import ("-m", "message").
func importDebian(t *testing.T, d *enginetest.Daemon, rootfs, name string, opts ...string) {
	t.Helper()
	tarCmd := exec.Command("tar", "-C", rootfs, "--numeric-owner", "-c", ".")
	imp := d.BerthCommand(append(append([]string{"import"}, opts...), "-", name)...)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var impErr bytes.Buffer
	imp.Stderr = &impErr
	if err := tarCmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("import: %v: %s", err, impErr.String())
	}
	if err := tarCmd.Wait(); err != nil {
		t.Fatal(err)
	}
}
