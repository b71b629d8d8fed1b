package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockDaemon takes an exclusive lock on execRoot/berthd.pid and writes our
// pid into it, so that a second berthd refuses to start instead of
// fighting over the socket and the database. The lock is released when
// the process exits.
func lockDaemon(execRoot string) (*os.File, error) {
	if err := os.MkdirAll(execRoot, 0o711); err != nil {
		return nil, err
	}
	path := filepath.Join(execRoot, "berthd.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			return nil, fmt.Errorf("another berthd is running (pid %s, lock %s)", strings.TrimSpace(string(pid)), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// listen opens the API socket named by host ("unix:///path" or a plain
// path). A socket file left by a daemon that died is replaced; one that
// still answers is not (the pid lock should have caught that already).
func listen(host string) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		if strings.Contains(host, "://") {
			return nil, fmt.Errorf("unsupported host %q: berthd listens on unix sockets only", host)
		}
		path = host
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: a daemon already answers there", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Root and the "berth" group (if the host has one) may use the API,
	// as the docker group does for dockerd.
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	if gid, ok := lookupGroup("berth"); ok {
		os.Chown(path, 0, gid)
	}
	return l, nil
}

// lookupGroup finds a group id in /etc/group without cgo.
func lookupGroup(name string) (int, bool) {
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			var gid int
			if _, err := fmt.Sscan(f[2], &gid); err == nil {
				return gid, true
			}
		}
	}
	return 0, false
}
