package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// Exit statuses of run, create and start when the container itself did
// not run, as docker's.
const (
	exitDaemonRefused = 125 // the daemon refused (bad flag, unknown image)
	exitCannotInvoke  = 126 // the command exists but cannot be run
	exitNotFound      = 127 // the command does not exist
)

func (c *CLI) runCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), &o, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	addRunFlags(cmd.Flags(), &o, true)
	return cmd
}

func (c *CLI) createCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, _, err := c.create(cmd.Context(), "create", &o, args[0], args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, id)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	addRunFlags(cmd.Flags(), &o, false)
	return cmd
}

// runError is how run and create report a failure before the container
// ran: docker's "docker: message" with a pointer to the help, status 125
// unless given.
func runError(command string, err error, code int) error {
	var se *StatusError
	if errors.As(err, &se) {
		return err
	}
	return &StatusError{
		Status: fmt.Sprintf("berth: %s\n\nRun 'berth %s --help' for more information", err, command),
		Code:   code,
	}
}

// create makes the container from the flags, pulling its image first if
// the daemon does not have it (or always, with --pull always), and
// returns its ID and the configuration sent.
func (c *CLI) create(ctx context.Context, command string, o *runOptions, imageName string, args []string) (string, *container.Config, error) {
	req, err := o.containerConfig(imageName, args, c.getenv)
	if err != nil {
		return "", nil, runError(command, err, exitDaemonRefused)
	}
	if command == "run" {
		if o.detach {
			if len(o.attach) > 0 {
				return "", nil, errors.New("conflicting options: cannot specify both --attach and --detach")
			}
			req.Config.AttachStdin, req.Config.AttachStdout, req.Config.AttachStderr = false, false, false
			req.Config.StdinOnce = false
		} else {
			if req.Config.Tty && req.Config.AttachStdin && !isTerminal(c.in) {
				return "", nil, errors.New("the input device is not a TTY")
			}
			if req.Config.AttachStdin {
				req.Config.StdinOnce = true
			}
		}
	}
	if req.Config.Tty {
		h, w := terminalSize(c.out)
		req.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	switch o.pull {
	case "missing", "always", "never":
	default:
		return "", nil, runError(command, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.pull), exitDaemonRefused)
	}
	if o.cidFile != "" {
		if _, err := os.Stat(o.cidFile); err == nil {
			return "", nil, runError(command, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidFile), exitDaemonRefused)
		}
	}
	api, err := c.client(ctx)
	if err != nil {
		return "", nil, err
	}
	if o.pull == "always" {
		if err := c.pullForRun(ctx, imageName, o); err != nil {
			return "", nil, runError(command, err, exitDaemonRefused)
		}
	}
	opts := client.ContainerCreateOptions{Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.Networking, Platform: req.Platform, Name: req.Name}
	res, err := api.ContainerCreate(ctx, opts)
	if err != nil && isNotFound(err) && o.pull == "missing" && isImageMissing(ctx, api, imageName) {
		if !o.quiet {
			fmt.Fprintf(c.errOut, "Unable to find image '%s' locally\n", familiarWithTag(imageName))
		}
		if err := c.pullForRun(ctx, imageName, o); err != nil {
			return "", nil, runError(command, err, exitDaemonRefused)
		}
		res, err = api.ContainerCreate(ctx, opts)
	}
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return "", nil, err
		}
		return "", nil, runError(command, err, exitDaemonRefused)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.errOut, "WARNING: %s\n", w)
	}
	if o.cidFile != "" {
		if err := os.WriteFile(o.cidFile, []byte(res.ID), 0o644); err != nil {
			return "", nil, runError(command, fmt.Errorf("failed to write the container ID to the file: %w", err), exitDaemonRefused)
		}
	}
	return res.ID, req.Config, nil
}

// isImageMissing tells a create that failed for want of its image from
// one that failed for another missing object (a volume-from container,
// say): the image itself is looked up.
func isImageMissing(ctx context.Context, api *client.Client, name string) bool {
	_, err := api.ImageInspect(ctx, name)
	return err != nil && isNotFound(err)
}

// familiarWithTag is the short name docker prints: "busybox:latest".
func familiarWithTag(name string) string {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

// pullForRun pulls the image of run or create, its progress on standard
// error like docker's.
func (c *CLI) pullForRun(ctx context.Context, name string, o *runOptions) error {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return err
	}
	err = c.pullRef(ctx, reference.TagNameOnly(ref), o.platform, c.errOut, o.quiet)
	var se *StatusError
	if errors.As(err, &se) {
		return errors.New(se.Status) // run's status for it is 125, not pull's 1
	}
	return err
}

// run is "berth run": create, then either start and print the ID (-d) or
// attach, start, and wait, exiting with the container's status.
func (c *CLI) run(ctx context.Context, o *runOptions, imageName string, args []string) error {
	id, cfg, err := c.create(ctx, "run", o, imageName, args)
	if err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	if o.detach {
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return startError(err)
		}
		fmt.Fprintln(c.out, id)
		return nil
	}
	// Ask for the exit status before starting, so that a quick exit is not
	// missed; with --rm the daemon removes the container and answers then.
	cond := container.WaitConditionNextExit
	if o.rm {
		cond = container.WaitConditionRemoved
	}
	wait := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})

	streams := streamOptions{
		stdin:      cfg.AttachStdin,
		stdout:     cfg.AttachStdout,
		stderr:     cfg.AttachStderr,
		tty:        o.tty,
		detachKeys: o.detachKeys,
	}
	var session *streamSession
	if streams.stdin || streams.stdout || streams.stderr {
		conn, err := api.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream: true, Stdin: streams.stdin, Stdout: streams.stdout, Stderr: streams.stderr, DetachKeys: o.detachKeys,
		})
		if err != nil {
			return runError("run", err, exitDaemonRefused)
		}
		defer conn.Close()
		session = &streamSession{c: c, conn: conn.HijackedResponse, opts: streams}
	}
	if o.sigProxy && !o.tty {
		stop := c.proxySignals(ctx, api, id)
		defer stop()
	}
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if session != nil {
			session.conn.Close()
		}
		if o.rm {
			api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{RemoveVolumes: true, Force: true})
		}
		return startError(err)
	}
	if o.tty && isTerminal(c.out) {
		stop := c.watchResize(ctx, containerResizer(api, id))
		defer stop()
	}
	if session != nil {
		detached, err := session.run(ctx)
		if err != nil {
			return err
		}
		if detached {
			return nil
		}
	}
	return waitStatus(wait)
}

// startError maps a failed start to docker's exit status. The API carries
// only the runtime's message, so, as the docker CLI does, the status is
// read from its wording: a missing executable is 127, one that cannot be
// executed 126, anything else 125.
func startError(err error) error {
	msg := err.Error()
	code := exitDaemonRefused
	switch {
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "no such file or directory"):
		code = exitNotFound
	case strings.Contains(msg, "permission denied"),
		strings.Contains(msg, "is a directory"):
		code = exitCannotInvoke
	}
	return runError("run", err, code)
}

func (c *CLI) startCommand() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return c.startAttached(cmd.Context(), args[0], attach, interactive, detachKeys)
			}
			return c.startAll(cmd.Context(), args)
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startAll starts each container, printing its name; the failures are
// printed, then named together in a last line, as docker does.
func (c *CLI) startAll(ctx context.Context, names []string) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	var failures, failed []string
	for _, name := range names {
		if _, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failures = append(failures, err.Error())
			failed = append(failed, name)
			continue
		}
		fmt.Fprintln(c.out, name)
	}
	if len(failures) > 0 {
		failures = append(failures, "Error: failed to start containers: "+strings.Join(failed, ", "))
		return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
	}
	return nil
}

// startAttached is "start -a" and "start -i": attach, start, wait.
func (c *CLI) startAttached(ctx context.Context, name string, attach, interactive bool, detachKeys string) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := res.Container
	tty := ctr.Config != nil && ctr.Config.Tty
	stdin := interactive && ctr.Config != nil && ctr.Config.OpenStdin
	if stdin && tty && !isTerminal(c.in) {
		return errors.New("the input device is not a TTY")
	}
	streams := streamOptions{stdin: stdin, stdout: attach, stderr: attach, tty: tty, detachKeys: detachKeys}
	conn, err := api.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: attach, Stderr: attach, DetachKeys: detachKeys,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	wait := api.ContainerWait(ctx, ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if !tty {
		stop := c.proxySignals(ctx, api, ctr.ID)
		defer stop()
	}
	if _, err := api.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	if tty && isTerminal(c.out) {
		stop := c.watchResize(ctx, containerResizer(api, ctr.ID))
		defer stop()
	}
	session := &streamSession{c: c, conn: conn.HijackedResponse, opts: streams}
	detached, err := session.run(ctx)
	if err != nil || detached {
		return err
	}
	return waitStatus(wait)
}
