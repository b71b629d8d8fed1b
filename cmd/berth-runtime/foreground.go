package main

import (
	"io"
	"os"
	"os/signal"
	"time"

	"berth.dev/runtime"
	"golang.org/x/sys/unix"
)

// foreground runs the runtime as the parent of a container process the way
// `runc run` and `runc exec` do without --detach: it forwards signals to the
// process, reaps children, relays a terminal, and returns the process's
// exit status.
type foreground struct {
	sigc chan os.Signal
	// notified is closed once every signal is enabled; forwardAll arms
	// the timer that enables them.
	notified  chan struct{}
	enableAll *time.Timer
	// console is the pty master when the runtime itself holds the terminal.
	console  *os.File
	restore  func()
	consoleR *os.File // the runtime's end of the console socket pair
	consoleW *os.File // the end handed to the container
}

// signals is the start of catching signals for a foreground process.
type signals struct {
	c       chan os.Signal
	enabled chan struct{} // closed once the common signals are caught
}

// catchSignals starts catching the signals a foreground run needs and
// users send by hand, in the background: enabling a signal in the Go
// runtime is a round trip to its signal thread, about 20 µs each (1.3 ms
// for all 64), done while the caller reads its config. The rest (real-time
// signals and the like, forwarded too) are enabled once the process has
// run for a moment (forwardAll).
func catchSignals() *signals {
	s := &signals{c: make(chan os.Signal, 128), enabled: make(chan struct{})}
	go func() {
		signal.Notify(s.c, unix.SIGCHLD, unix.SIGWINCH, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		close(s.enabled)
	}()
	return s
}

// newForeground waits until sig catches the common signals (sig from
// catchSignals; nil starts catching them now): call it before the process
// is created so that none is lost.
func newForeground(terminal bool, sig *signals) (*foreground, error) {
	if sig == nil {
		sig = catchSignals()
	}
	<-sig.enabled
	f := &foreground{sigc: sig.c}
	f.notified = make(chan struct{})
	// Orphans of a container without its own PID namespace are reparented
	// here and reaped.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	if terminal {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		f.consoleR = os.NewFile(uintptr(fds[0]), "console-r")
		f.consoleW = os.NewFile(uintptr(fds[1]), "console-w")
	}
	return f, nil
}

// launch calls create, which makes the process and hands it console (the
// end of the console socket for the container, nil without a terminal),
// then relays the terminal. On error the foreground is closed.
func (f *foreground) launch(create func(console *os.File) error) error {
	err := create(f.consoleW)
	if f.consoleW != nil {
		f.consoleW.Close()
	}
	if err == nil {
		err = f.attachConsole()
	}
	if err != nil {
		f.close()
	}
	return err
}

// attachConsole receives the pty master the container sent and relays it
// to the runtime's own stdio, with the local terminal in raw mode.
func (f *foreground) attachConsole() error {
	if f.consoleR == nil {
		return nil
	}
	master, err := runtime.RecvFd(f.consoleR)
	f.consoleR.Close()
	if err != nil {
		return err
	}
	f.console = master
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
	if old, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		raw := *old
		makeRaw(&raw)
		if unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, &raw) == nil {
			f.restore = func() { unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, old) }
		}
	}
	go io.Copy(master, os.Stdin)
	go io.Copy(os.Stdout, master)
	return nil
}

func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// wait forwards signals to pid until it exits and returns its exit status
// (128+n when a signal n ended it).
func (f *foreground) wait(pid int) int {
	defer f.close()
	f.forwardAll()
	for {
		if st, done := reap(pid); done {
			return st
		}
		sig := <-f.sigc
		switch sig {
		case unix.SIGCHLD:
		case unix.SIGWINCH:
			if f.console != nil {
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					unix.IoctlSetWinsize(int(f.console.Fd()), unix.TIOCSWINSZ, ws)
				}
			}
		case unix.SIGURG:
			// The Go runtime's own preemption signal.
		default:
			unix.Kill(pid, sig.(unix.Signal))
		}
	}
}

// reap collects every exited child; it reports pid's status once it has.
func reap(pid int) (int, bool) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || p <= 0 {
			return 0, false
		}
		if p == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), true
			}
			return ws.ExitStatus(), true
		}
	}
}

// forwardAllAfter is how long the process runs before every other signal
// is enabled for forwarding.
const forwardAllAfter = 20 * time.Millisecond

// forwardAll enables every other signal for forwarding, in the background
// once the process has run for forwardAllAfter. Those 56 round trips to
// the Go runtime's signal thread (1.3 ms of CPU and as many thread
// switches) made a run of /bin/true 2.5 ms slower, done while the
// container was created as before, or as soon as it runs. Until they are
// enabled, one of those rarer signals (real-time ones, SIGPWR, SIGTSTP)
// takes its default action on the runtime, as it did for the first
// moments before; the common ones are forwarded from the start.
func (f *foreground) forwardAll() {
	f.enableAll = time.AfterFunc(forwardAllAfter, func() {
		signal.Notify(f.sigc)
		close(f.notified)
	})
}

func (f *foreground) close() {
	if f.enableAll != nil {
		f.enableAll.Stop()
	}
	select {
	case <-f.notified:
		signal.Stop(f.sigc)
	default:
		// Not enabled, or still enabling them: the runtime is about to
		// exit, and Stop would wait for the enabling to finish.
	}
	if f.restore != nil {
		f.restore()
	}
	if f.console != nil {
		f.console.Close()
	}
}
