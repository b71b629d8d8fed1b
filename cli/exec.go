package cli

import (
	"context"
	"errors"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// execOptions are the flags of "berth exec".
type execOptions struct {
	detach, interactive, tty, privileged bool
	env, envFiles                        []string
	user, workdir, detachKeys            string
}

func (c *CLI) execCommand() *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.exec(cmd.Context(), o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	listVarP(f, &o.env, "list", "env", "e", "Set environment variables")
	listVarP(f, &o.envFiles, "list", "env-file", "", "Read in a file of environment variables")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// execConfig is the exec request for the flags and command.
func (o execOptions) execConfig(cmd []string, getenv func(string) string) (client.ExecCreateOptions, error) {
	env, err := readEnv(o.envFiles, o.env, getenv)
	if err != nil {
		return client.ExecCreateOptions{}, err
	}
	return client.ExecCreateOptions{
		User:         o.user,
		Privileged:   o.privileged,
		TTY:          o.tty,
		AttachStdin:  o.interactive && !o.detach,
		AttachStdout: !o.detach,
		AttachStderr: !o.detach,
		DetachKeys:   o.detachKeys,
		Env:          env,
		WorkingDir:   o.workdir,
		Cmd:          cmd,
	}, nil
}

// exec runs a command in a container: detached, it only starts it;
// otherwise it attaches, and exits with the command's status.
func (c *CLI) exec(ctx context.Context, o execOptions, name string, command []string) error {
	opts, err := o.execConfig(command, c.getenv)
	if err != nil {
		return err
	}
	if opts.TTY && opts.AttachStdin && !isTerminal(c.in) {
		return errors.New("the input device is not a TTY")
	}
	if opts.TTY {
		h, w := terminalSize(c.out)
		opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	created, err := api.ExecCreate(ctx, name, opts)
	if err != nil {
		return err
	}
	if o.detach {
		_, err := api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
		return err
	}
	conn, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return err
	}
	defer conn.Close()
	if opts.TTY && isTerminal(c.out) {
		stop := c.watchResize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := api.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
		defer stop()
	}
	session := &streamSession{c: c, conn: conn.HijackedResponse, opts: streamOptions{
		stdin: opts.AttachStdin, stdout: true, stderr: true, tty: opts.TTY, detachKeys: o.detachKeys,
	}}
	detached, err := session.run(ctx)
	if err != nil || detached {
		return err
	}
	res, err := api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &StatusError{Code: res.ExitCode}
	}
	return nil
}
