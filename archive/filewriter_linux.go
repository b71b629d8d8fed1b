package archive

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// fileWriter writes regular files on worker goroutines while Apply goes on
// with the next entries. Apply reads a file's content from the tar into a
// batch and queues it; a worker writes the bytes, then sets owner, mode,
// xattrs and times and closes the file. Writing a layer's bytes into the
// page cache is a third of the work of unpacking it, and the goroutine that
// reads the tar is the one the whole unpack waits for.
//
// A file is either created by Apply, which hands over the descriptor
// (add), or created by the worker in a directory Apply resolved (create).
// Apply only lets workers create a name it knows to be new in a directory
// reached without symlinks, in a root that was empty (see applier.async):
// then no later entry can depend on the order in which workers create, and
// no two workers create the same name. Before any entry that could (a name
// seen before, a whiteout, a hard link) Apply waits for the workers
// (barrier).
//
// Files go to the workers by directory: the files of one directory to one
// worker (two creating in one directory would queue on its lock), the next
// directory to the next worker.
//
// A worker's error stops the work (the remaining files are only closed) and
// is reported by failure, barrier and close, naming the entry.
type fileWriter struct {
	workers  []*fileWorker
	cur      *fileWorker // the worker of the current directory
	curDir   string
	free     chan *writeBatch
	made     int
	inflight sync.WaitGroup // batches queued and not yet done
	wg       sync.WaitGroup // the worker goroutines

	failed atomic.Bool
	mu     sync.Mutex
	err    error
}

type fileWorker struct {
	queue chan *writeBatch
	batch *writeBatch // being filled by Apply; nil until needed
	fd    int         // the worker's: the file being written
}

// A writeBatch carries the content of whole files, or a part of a large
// one, in buf, with the operations on them in order.
type writeBatch struct {
	buf []byte
	ops []writeOp
	// dirs are descriptors of the directories its create ops name,
	// closed once the batch is done; dirName is the last one's path.
	dirs    []int
	dirName string
}

type writeOp struct {
	// first: the first op of a file, which creates it (create, as base
	// in dir, with perm) or takes over fd.
	first, create bool
	fd, dir       int
	base          string
	perm          uint32
	data          []byte // content to write next, in the batch's buf
	// last: the file is complete: finish it (unless abort) and close it.
	last, abort bool
	meta        fileMeta
}

// fileMeta is what is set on a regular file after its content.
type fileMeta struct {
	name, rel    string // the entry's name in the tar, its path in root
	uid, gid     int
	chown, chmod bool
	mode         uint32
	xattrs       map[string]string
	atime, mtime time.Time
}

const (
	fileWorkers    = 2
	writeBatchSize = 512 << 10
	writeBatchOps  = 128 // bounds the descriptors a batch of adds keeps open
	writeBatches   = 12  // bounds the memory: 6 MiB
)

func newFileWriter() *fileWriter {
	w := &fileWriter{free: make(chan *writeBatch, writeBatches)}
	for i := 0; i < fileWorkers; i++ {
		k := &fileWorker{queue: make(chan *writeBatch, writeBatches), fd: -1}
		w.workers = append(w.workers, k)
		w.wg.Add(1)
		go w.run(k)
	}
	w.cur = w.workers[0]
	return w
}

func (w *fileWriter) run(k *fileWorker) {
	defer w.wg.Done()
	for b := range k.queue {
		for i := range b.ops {
			op := &b.ops[i]
			if err := k.do(op, w.failed.Load()); err != nil {
				w.fail(fmt.Errorf("apply layer entry %q: %w", op.meta.name, err))
			}
			*op = writeOp{}
		}
		for _, fd := range b.dirs {
			unix.Close(fd)
		}
		b.buf, b.ops, b.dirs, b.dirName = b.buf[:0], b.ops[:0], b.dirs[:0], ""
		w.free <- b
		w.inflight.Done()
	}
}

// do carries out op; after a failure (skip) it only closes.
func (k *fileWorker) do(op *writeOp, skip bool) error {
	var err error
	if op.first {
		k.fd = op.fd
		if op.create && !skip {
			k.fd, err = unix.Openat(op.dir, op.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, op.perm)
			err = wrapPath("create", op.meta.rel, err)
		}
	}
	if err == nil && !skip && len(op.data) > 0 {
		err = wrapPath("write", op.meta.rel, writeAll(k.fd, op.data))
	}
	if op.last {
		if err == nil && !skip && !op.abort {
			err = op.meta.apply(k.fd)
		}
		if k.fd >= 0 {
			unix.Close(k.fd)
		}
		k.fd = -1
	}
	return err
}

func (w *fileWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.failed.Store(true)
}

// apply sets owner, mode, xattrs and times of the file open as fd, in this
// order: chown clears setuid and setgid, and writing clears
// security.capability.
func (m *fileMeta) apply(fd int) error {
	if m.chown {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return wrapPath("chown", m.rel, err)
		}
	}
	if m.chmod {
		if err := unix.Fchmod(fd, m.mode); err != nil {
			return wrapPath("chmod", m.rel, err)
		}
	}
	for k, v := range m.xattrs {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil && !unsupported(err) {
			return wrapPath("setxattr "+k, m.rel, err)
		}
	}
	return wrapPath("utimes", m.rel, setFileTimes(fd, m.atime, m.mtime))
}

// add takes over fd, a regular file Apply created in directory dir, and
// queues its size bytes of content, read from r now, and then its
// metadata. It fails only when r does; fd is closed by the writer either
// way.
func (w *fileWriter) add(fd int, dir string, r io.Reader, size int64, meta fileMeta) error {
	return w.queue(writeOp{first: true, fd: fd}, dirHandle{fd: -1}, dir, r, size, meta)
}

// create queues the creation of base, a name new to the directory dir
// open as h, with permission bits perm, then its size bytes of content
// read from r now, and its metadata. It fails only when r does (nothing is
// created then) or when h cannot be duplicated.
func (w *fileWriter) create(h dirHandle, dir, base string, perm uint32, r io.Reader, size int64, meta fileMeta) error {
	return w.queue(writeOp{first: true, create: true, fd: -1, base: base, perm: perm}, h, dir, r, size, meta)
}

func (w *fileWriter) queue(op writeOp, h dirHandle, dir string, r io.Reader, size int64, meta fileMeta) error {
	k := w.worker(dir)
	op.meta = meta
	for {
		b := w.batch(k, size > 0)
		if op.create {
			var err error
			if op.dir, err = b.dir(h, dir); err != nil {
				return err
			}
		}
		n := int(min(size, int64(cap(b.buf)-len(b.buf))))
		op.data = b.buf[len(b.buf) : len(b.buf)+n]
		if _, err := io.ReadFull(r, op.data); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			err = fmt.Errorf("read content: %w: %w", errdefs.ErrInvalidArgument, err)
			if !(op.first && op.create) {
				b.ops = append(b.ops, writeOp{first: op.first, fd: op.fd, last: true, abort: true, meta: meta})
			}
			return err
		}
		b.buf = b.buf[:len(b.buf)+n]
		size -= int64(n)
		op.last = size == 0
		b.ops = append(b.ops, op)
		if op.last {
			return nil
		}
		op = writeOp{fd: -1, meta: meta}
	}
}

// worker returns the worker for a file in directory dir: the current one
// while the directory stays the same, else the next one, and the batch of
// the one before is sent on its way.
func (w *fileWriter) worker(dir string) *fileWorker {
	if dir == w.curDir {
		return w.cur
	}
	w.flush(w.cur)
	for i, k := range w.workers {
		if k == w.cur {
			w.cur = w.workers[(i+1)%len(w.workers)]
			break
		}
	}
	w.curDir = dir
	return w.cur
}

// batch returns k's batch with room for an op and, with data, for some
// content, sending the full one on and waiting for an empty one when as
// many as allowed are in flight.
func (w *fileWriter) batch(k *fileWorker, data bool) *writeBatch {
	if b := k.batch; b != nil && len(b.ops) < cap(b.ops) && (!data || len(b.buf) < cap(b.buf)) {
		return b
	}
	w.flush(k)
	select {
	case k.batch = <-w.free:
	default:
		if w.made < writeBatches {
			k.batch = &writeBatch{buf: make([]byte, 0, writeBatchSize), ops: make([]writeOp, 0, writeBatchOps)}
			w.made++
		} else {
			k.batch = <-w.free
		}
	}
	return k.batch
}

// dir returns the batch's own descriptor of directory dir (h).
func (b *writeBatch) dir(h dirHandle, dir string) (int, error) {
	if len(b.dirs) > 0 && b.dirName == dir {
		return b.dirs[len(b.dirs)-1], nil
	}
	fd, err := unix.FcntlInt(uintptr(h.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, wrapPath("dup", dir, err)
	}
	b.dirs = append(b.dirs, fd)
	b.dirName = dir
	return fd, nil
}

// flush sends k's batch, if it holds anything, to k.
func (w *fileWriter) flush(k *fileWorker) {
	if b := k.batch; b != nil && (len(b.ops) > 0 || len(b.dirs) > 0) {
		w.inflight.Add(1)
		k.queue <- b
		k.batch = nil
	}
}

// failure returns the writer's error once it has failed.
func (w *fileWriter) failure() error {
	if !w.failed.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// barrier waits until every file queued so far is written and closed, and
// returns the writer's error.
func (w *fileWriter) barrier() error {
	for _, k := range w.workers {
		w.flush(k)
	}
	w.inflight.Wait()
	return w.failure()
}

// close hands over what is queued, waits for the workers to finish and
// returns the writer's error. Every descriptor it was given is closed by
// then. It may be called again.
func (w *fileWriter) close() error {
	if w.workers != nil {
		for _, k := range w.workers {
			w.flush(k)
			close(k.queue)
		}
		w.wg.Wait()
		w.workers = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
