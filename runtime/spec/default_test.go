package spec

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultIsFresh(t *testing.T) {
	a, b := Default(false), Default(false)
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Mounts[0].Destination = "/elsewhere"
	if !reflect.DeepEqual(b, Default(false)) {
		t.Error("modifying one Default result changed another")
	}
}

func TestDefaultRootless(t *testing.T) {
	s := Default(true)
	if hasNamespace(s, specs.NetworkNamespace) || !hasNewNamespace(s, specs.UserNamespace) {
		t.Errorf("rootless namespaces = %+v, want a new user namespace and no network namespace", s.Linux.Namespaces)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	if !reflect.DeepEqual(s.Linux.UIDMappings, want) {
		t.Errorf("uidMappings = %+v, want %+v", s.Linux.UIDMappings, want)
	}
	if s.Linux.Resources != nil {
		t.Errorf("rootless resources = %+v, want none", s.Linux.Resources)
	}
}

// TestDefaultMatchesRunc compares Default with what the installed runc's
// `spec` command prints. Known, deliberate differences are normalised:
// ociVersion (berth's types are newer), the hostname, and the ambient
// capabilities that runc before 1.2 granted and later versions dropped.
func TestDefaultMatchesRunc(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	for _, rootless := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"spec", "--bundle", dir}
		if rootless {
			args = append(args, "--rootless")
		}
		if out, err := exec.Command(runc, args...).CombinedOutput(); err != nil {
			t.Fatalf("runc %v: %v: %s", args, err, out)
		}
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var want specs.Spec
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got := Default(rootless)
		want.Version, want.Hostname = got.Version, got.Hostname
		want.Process.Capabilities.Ambient = nil
		// runc adds a cgroup namespace on cgroup v2 hosts; Default never does.
		dropNS(&want, specs.CgroupNamespace)
		if !reflect.DeepEqual(got, &want) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(&want, "", " ")
			t.Errorf("Default(%v) differs from runc's:\n%s\nrunc:\n%s", rootless, g, w)
		}
	}
}
