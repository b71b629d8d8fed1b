// Package openat2 wraps openat2(2) with the retry its resolve flags need:
// RESOLVE_IN_ROOT and RESOLVE_BENEATH fail with EAGAIN whenever a rename or
// a mount anywhere on the system raced with the lookup (the kernel cannot
// then vouch that ".." stayed inside), and the documented answer is to try
// again. Every caller in berth opens through here.
package openat2

import "golang.org/x/sys/unix"

// maxTries bounds the retries: a busy system (many mounts at once, as a
// test run or 50 containers starting) can make several lookups in a row
// race.
const maxTries = 128

// Open is unix.Openat2 retried on EAGAIN and EINTR. how is not changed.
func Open(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < maxTries {
			continue
		}
		return fd, err
	}
}
