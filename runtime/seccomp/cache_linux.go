package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/internal/atomicfile"
)

// insnSize is the size of one BPF instruction (struct sock_filter).
const insnSize = 8

// Program returns the BPF program of the filter c describes, after
// checking c with Validate. Building a filter with libseccomp is slow
// (docker's default profile takes some 20 ms), so when cacheDir is not
// empty the program is kept there, named by a digest of c, the libseccomp
// version and the architecture, and later calls with the same profile read
// it back. A cache entry that cannot be read or written is ignored: the
// program is then built again.
func Program(c *specs.LinuxSeccomp, cacheDir string) ([]unix.SockFilter, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no seccomp profile", ErrInvalid)
	}
	if err := Validate(c); err != nil {
		return nil, err
	}
	var path string
	if cacheDir != "" {
		data, err := json.Marshal(c)
		if err == nil {
			sum := sha256.Sum256(append(data, "\x00"+LibseccompVersion()+"\x00"+runtime.GOARCH...))
			path = filepath.Join(cacheDir, hex.EncodeToString(sum[:])+".bpf")
			if b, err := os.ReadFile(path); err == nil {
				if prog, err := DecodeProgram(b); err == nil {
					return prog, nil
				}
			}
		}
	}
	prog, err := compile(c)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := os.MkdirAll(cacheDir, 0o700); err == nil {
			_ = atomicfile.WriteBytes(path, EncodeProgram(prog), 0o600)
		}
	}
	return prog, nil
}

// Install loads prog, a program Program made of c, for every thread of the
// calling process, with the flags c asks for; it returns the listener as
// Load does. The conditions of Load apply (no_new_privs or CAP_SYS_ADMIN,
// one OS thread).
func Install(prog []unix.SockFilter, c *specs.LinuxSeccomp) (int, error) {
	if len(prog) == 0 {
		return -1, fmt.Errorf("%w: empty seccomp program", ErrInvalid)
	}
	return install(prog, loadFlags(c))
}

// EncodeProgram is prog as the kernel lays it out (struct sock_filter in
// native byte order), to pass it to another process or keep it in a file.
func EncodeProgram(prog []unix.SockFilter) []byte {
	b := make([]byte, len(prog)*insnSize)
	for i, in := range prog {
		o := b[i*insnSize:]
		binary.NativeEndian.PutUint16(o[0:], in.Code)
		o[2], o[3] = in.Jt, in.Jf
		binary.NativeEndian.PutUint32(o[4:], in.K)
	}
	return b
}

// DecodeProgram is the inverse of EncodeProgram.
func DecodeProgram(b []byte) ([]unix.SockFilter, error) {
	if len(b) == 0 || len(b)%insnSize != 0 || len(b)/insnSize > maxInsns {
		return nil, fmt.Errorf("%w: %d bytes is not a BPF program", ErrInvalid, len(b))
	}
	prog := make([]unix.SockFilter, len(b)/insnSize)
	for i := range prog {
		in := b[i*insnSize:]
		prog[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(in[0:]), Jt: in[2], Jf: in[3], K: binary.NativeEndian.Uint32(in[4:])}
	}
	return prog, nil
}
