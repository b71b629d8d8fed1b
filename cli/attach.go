package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// defaultDetachKeys is docker's detach sequence, ctrl-p ctrl-q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// streamOptions say which streams a session carries and how.
type streamOptions struct {
	stdin, stdout, stderr bool
	tty                   bool
	detachKeys            string
}

// streamSession carries one hijacked attach (or exec) connection between
// the CLI's streams and the container: standard input copied in (the
// terminal in raw mode meanwhile), output copied out (demultiplexed when
// there is no tty). The session ends when the output ends.
type streamSession struct {
	c    *CLI
	conn client.HijackedResponse
	opts streamOptions

	mu       sync.Mutex
	detached bool
}

// run copies until the container's output ends and reports whether the
// user typed the detach sequence (the daemon then ends the stream while
// the container keeps running). It restores the terminal before
// returning, whatever happens.
func (s *streamSession) run(ctx context.Context) (detached bool, err error) {
	if s.opts.stdin && s.opts.tty {
		if f, ok := terminal(s.c.in); ok {
			restore, err := makeRaw(f)
			if err != nil {
				return false, fmt.Errorf("set raw terminal: %w", err)
			}
			defer restore()
		}
	}
	outDone := make(chan error, 1)
	go func() {
		var err error
		if s.opts.tty {
			_, err = io.Copy(s.c.out, s.conn.Reader)
		} else {
			_, err = stdcopy.StdCopy(s.c.out, s.c.errOut, s.conn.Reader)
		}
		outDone <- err
	}()
	if s.opts.stdin {
		keys, err := parseDetachKeys(s.opts.detachKeys)
		if err != nil {
			return false, err
		}
		go func() {
			io.Copy(s.conn.Conn, &escapeWatcher{r: s.c.in, keys: keys, seen: s.markDetached})
			s.conn.CloseWrite()
		}()
	}
	select {
	case err = <-outDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	detached = s.detached
	s.mu.Unlock()
	if detached {
		return true, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	return false, err
}

func (s *streamSession) markDetached() {
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
}

// escapeWatcher passes input through unchanged and calls seen when the
// bytes read so far end with the detach sequence.
type escapeWatcher struct {
	r    io.Reader
	keys []byte
	tail []byte
	seen func()
}

func (w *escapeWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 && len(w.keys) > 0 {
		w.tail = append(w.tail, p[:n]...)
		if len(w.tail) > len(w.keys) {
			w.tail = w.tail[len(w.tail)-len(w.keys):]
		}
		if bytes.Equal(w.tail, w.keys) {
			w.seen()
		}
	}
	return n, err
}

// parseDetachKeys reads a detach sequence such as "ctrl-p,ctrl-q" or
// "a,ctrl-c": single characters or ctrl- followed by a letter or one of
// @[\]^_.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		if len(k) == 1 {
			keys = append(keys, k[0])
			continue
		}
		name, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		if !ok || len(name) != 1 {
			return nil, invalid("invalid detach keys (%s) provided", s)
		}
		switch ch := name[0]; {
		case ch >= 'a' && ch <= 'z':
			keys = append(keys, ch-'a'+1)
		case ch == '@':
			keys = append(keys, 0)
		case strings.IndexByte(`[\]^_`, ch) >= 0:
			keys = append(keys, ch-'['+27)
		default:
			return nil, invalid("invalid detach keys (%s) provided", s)
		}
	}
	return keys, nil
}

// resizer sends the terminal's size to the daemon for a container or an
// exec: once at start, then on every SIGWINCH until stopped.
type resizer func(ctx context.Context, height, width uint) error

// watchResize sends the size now and on each SIGWINCH; the returned stop
// function ends the watch.
func (c *CLI) watchResize(ctx context.Context, resize resizer) (stop func()) {
	send := func() {
		h, w := terminalSize(c.out)
		if h == 0 && w == 0 {
			h, w = terminalSize(c.in)
		}
		if h == 0 && w == 0 {
			return
		}
		resize(ctx, h, w)
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, resizeSignal)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				send()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// proxySignals forwards the signals berth receives to the container until
// stopped (docker's --sig-proxy, used when there is no tty: with one, the
// terminal delivers keys such as ctrl-c to the container itself).
//
// Each signal's delivery is switched on and off by a round trip to the Go
// runtime's signal thread, about 20 µs: all of them took 1.5 ms of every
// run before the start, and as much again before the exit. So the signals
// a user sends to a foreground berth are proxied at once, the others from
// a moment later, and stop switches them off in the background.
func (c *CLI) proxySignals(ctx context.Context, api *client.Client, id string) (stop func()) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, proxiedFirst...)
	enabled := make(chan struct{})
	go func() {
		defer close(enabled)
		var rest []os.Signal
		for n := 1; n <= maxSignal; n++ {
			sig := syscall.Signal(n)
			if !slices.Contains(proxiedFirst, os.Signal(sig)) && sig != syscall.SIGKILL && sig != syscall.SIGSTOP {
				rest = append(rest, sig)
			}
		}
		signal.Notify(ch, rest...)
	}()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				sig, ok := s.(syscall.Signal)
				// SIGCHLD, SIGPIPE and SIGWINCH concern berth itself;
				// SIGURG is the Go runtime's preemption signal.
				if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGPIPE || sig == syscall.SIGURG || sig == resizeSignal {
					continue
				}
				api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: fmt.Sprint(int(sig))})
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		go func() {
			<-enabled
			signal.Stop(ch)
		}()
	}
}

// proxiedFirst are the signals a user sends to a foreground berth.
var proxiedFirst = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// maxSignal is the last real-time signal (SIGRTMAX).
const maxSignal = 64

func (c *CLI) attachCommand() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.attach(cmd.Context(), args[0], !noStdin, sigProxy, detachKeys)
		},
	}
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}

// attach connects to a running container and, when its output ends,
// exits with the container's status, as docker attach does.
func (c *CLI) attach(ctx context.Context, name string, withStdin, sigProxy bool, detachKeys string) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	ctr, err := attachableContainer(ctx, api, name)
	if err != nil {
		return err
	}
	tty := ctr.Config != nil && ctr.Config.Tty
	stdin := withStdin && ctr.Config != nil && ctr.Config.OpenStdin
	if stdin && tty && !isTerminal(c.in) {
		return errors.New("the input device is not a TTY")
	}
	opts := streamOptions{stdin: stdin, stdout: true, stderr: true, tty: tty, detachKeys: detachKeys}
	conn, err := api.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	// The container may have stopped between the look and the attach; a
	// second look keeps berth from waiting on a stream that never ends.
	if _, err := attachableContainer(ctx, api, ctr.ID); err != nil {
		return err
	}
	if tty && isTerminal(c.out) {
		stop := c.watchResize(ctx, containerResizer(api, ctr.ID))
		defer stop()
	}
	if sigProxy && !tty {
		stop := c.proxySignals(ctx, api, ctr.ID)
		defer stop()
	}
	wait := api.ContainerWait(ctx, ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	session := &streamSession{c: c, conn: conn.HijackedResponse, opts: opts}
	detached, err := session.run(ctx)
	if err != nil || detached {
		return err
	}
	return waitStatus(wait)
}

// attachableContainer inspects a container and refuses, in docker's
// words, one that is not running.
func attachableContainer(ctx context.Context, api *client.Client, name string) (container.InspectResponse, error) {
	res, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return res.Container, err
	}
	ctr := res.Container
	switch {
	case ctr.State == nil || !ctr.State.Running:
		return ctr, errors.New("You cannot attach to a stopped container, start it first")
	case ctr.State.Paused:
		return ctr, errors.New("You cannot attach to a paused container, unpause it first")
	case ctr.State.Restarting:
		return ctr, errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return ctr, nil
}

// containerResizer resizes a container's tty.
func containerResizer(api *client.Client, id string) resizer {
	return func(ctx context.Context, h, w uint) error {
		_, err := api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
}

// waitStatus turns a wait's answer into the command's result: nil for 0,
// else a StatusError carrying the container's exit status.
func waitStatus(wait client.ContainerWaitResult) error {
	select {
	case res := <-wait.Result:
		if res.Error != nil && res.Error.Message != "" {
			return &StatusError{Status: res.Error.Message, Code: 125}
		}
		if res.StatusCode != 0 {
			return &StatusError{Code: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return err
	}
}
