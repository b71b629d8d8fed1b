package seccomp

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Program keeps what it built in the cache and reads it back; a damaged
// entry is rebuilt, and a different profile gets an entry of its own.
func TestProgramCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	p1 := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "rmdir"}, Action: specs.ActErrno}}}
	built, err := Program(p1, dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("cache entries: %v", entries)
	}
	entry := filepath.Join(dir, entries[0].Name())
	// A cached program is what is returned: change it and see the change.
	cached, _ := os.ReadFile(entry)
	prog, _ := DecodeProgram(cached)
	prog[0].K ^= 1
	os.WriteFile(entry, EncodeProgram(prog), 0o600)
	again, err := Program(p1, dir)
	if err != nil || !slices.Equal(again, prog) {
		t.Errorf("the cached program was not used: %v", err)
	}
	// A damaged entry is ignored and rebuilt.
	os.WriteFile(entry, []byte("short"), 0o600)
	rebuilt, err := Program(p1, dir)
	if err != nil || !slices.Equal(rebuilt, built) {
		t.Errorf("rebuild after damage: %v", err)
	}
	p2 := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
	other, err := Program(p2, dir)
	if err != nil || slices.Equal(other, built) {
		t.Errorf("a different profile: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("cache entries after two profiles: %d", len(entries))
	}
	// Invalid profiles are refused before the cache is looked at.
	if _, err := Program(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, dir); err == nil {
		t.Error("an invalid profile was accepted")
	}
	if _, err := DecodeProgram(make([]byte, 12)); err == nil {
		t.Error("12 bytes decoded as a program")
	}
}
