package ocispec

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/image"
	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
)

func TestMain(m *testing.M) { fixtures.Main(m) }

// TestGeneratedSpecRuns runs generated configurations with runc, the
// reference runtime (or the runtime binary named by BERTH_TEST_RUNTIME), and looks at what the process sees: its user, its
// capabilities (docker's default set is the well-known a80425fb), the
// seccomp filter, no_new_privs, the engine's /etc files, a tmpfs and
// docker's sysctls.
func TestGeneratedSpecRuns(t *testing.T) {
	testutil.RequiresRoot(t)
	name := os.Getenv("BERTH_TEST_RUNTIME")
	if name == "" {
		name = "runc"
	}
	runc, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	script := `id; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; cat /etc/hosts /etc/hostname; ` +
		`echo HOME=$HOME; grep ' /scratch ' /proc/self/mounts | cut -d' ' -f3; touch /rootfs-write 2>/dev/null && echo writable || echo readonly; ` +
		`echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)`
	tests := []struct {
		name string
		opts RunOptions
		want []string
	}{
		{"defaults", RunOptions{}, []string{
			"uid=0(root) gid=0(root)", "CapEff:\t00000000a80425fb", "Seccomp:\t2", "NoNewPrivs:\t0",
			"127.0.0.1\tweb", "web", "HOME=/root", "tmpfs", "writable", "port_start=0"}},
		{"user, read-only, no-new-privileges", RunOptions{User: "berth", ReadOnly: true, SecurityOpt: []string{"no-new-privileges"}}, []string{
			"uid=1000(berth) gid=1000(berth)", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "HOME=/home/berth", "readonly"}},
		{"privileged", RunOptions{Privileged: true}, []string{"Seccomp:\t0", "writable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := fixtures.Bundle(t)
			files := t.TempDir()
			for name, content := range map[string][]byte{
				"hosts":       HostsFile("web", nil),
				"hostname":    []byte("web\n"),
				"resolv.conf": ResolvConf(nil, nil, nil, nil),
			} {
				if err := os.WriteFile(filepath.Join(files, name), content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o := tt.opts
			o.ID = testutil.UniqueName(t)
			o.Hostname = "web"
			o.HostsPath = filepath.Join(files, "hosts")
			o.HostnamePath = filepath.Join(files, "hostname")
			o.ResolvConfPath = filepath.Join(files, "resolv.conf")
			o.Tmpfs = map[string]string{"/scratch": "size=1m"}
			o.NetworkMode = "none"
			var img image.Config
			img.Config.Cmd = []string{"/bin/sh", "-c", script}
			s, err := Generate(img, filepath.Join(bundle, "rootfs"), o)
			if err != nil {
				t.Fatal(err)
			}
			// runc removes a cgroup named after the container on delete,
			// but would leave the /berth parent behind.
			s.Linux.CgroupsPath = ""
			if err := fixtures.WriteConfig(bundle, s); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			t.Cleanup(func() { _ = exec.Command(runc, "--root", root, "delete", "--force", o.ID).Run() })
			out, err := exec.Command(runc, "--root", root, "run", "--bundle", bundle, o.ID).CombinedOutput()
			if err != nil {
				t.Fatalf("%s run: %v: %s", name, err, out)
			}
			lines := strings.Split(string(out), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("container output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
