package content

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteOut starts writing n bytes of f from off to disk and returns
// without waiting (best effort: a later fsync makes sure).
func startWriteOut(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
