// Package cli is the berth command line: docker's container, volume, network,
// image and system commands (same names, flags, columns, templates and exit codes) as a
// client of the Docker Engine API that berthd serves. A CLI value holds
// the streams and environment of one invocation; Run parses the
// arguments, connects to the daemon (starting berthd when nothing answers
// on its socket) and returns the exit status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
	"berth.dev/internal/errdefs"
)

// CLI is one invocation of the berth command.
type CLI struct {
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	getenv func(string) string

	version string
	commit  string

	// Global flags.
	hosts     []string
	debug     bool
	configDir string

	api *client.Client
}

// Option configures a CLI.
type Option func(*CLI)

// WithStreams sets standard input, output and error (the process's own
// by default).
func WithStreams(in io.Reader, out, errOut io.Writer) Option {
	return func(c *CLI) { c.in, c.out, c.errOut = in, out, errOut }
}

// WithEnv sets the environment lookup (os.Getenv by default).
func WithEnv(getenv func(string) string) Option {
	return func(c *CLI) { c.getenv = getenv }
}

// WithVersion sets the version and git commit the CLI reports.
func WithVersion(version, commit string) Option {
	return func(c *CLI) { c.version, c.commit = version, commit }
}

// New returns a CLI with the given options.
func New(opts ...Option) *CLI {
	c := &CLI{
		in:      os.Stdin,
		out:     os.Stdout,
		errOut:  os.Stderr,
		getenv:  os.Getenv,
		version: "dev",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Run executes the command line args (without the program name) and
// returns the exit status: 0 on success, 1 for a failed command, 125 for
// a flag the command does not have.
func (c *CLI) Run(ctx context.Context, args []string) int {
	defer func() {
		if c.api != nil {
			c.api.Close()
		}
	}()
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.in)
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	return c.report(err)
}

// StatusError ends a command with a message (printed to standard error
// when not empty) and an exit status.
type StatusError struct {
	Status string
	Code   int
}

func (e *StatusError) Error() string { return e.Status }

// report prints err the way docker does and returns the exit status.
func (c *CLI) report(err error) int {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		if se.Status != "" {
			fmt.Fprintln(c.errOut, se.Status)
		}
		if se.Code == 0 {
			return 1
		}
		return se.Code
	case errors.Is(err, format.ErrTemplate):
		fmt.Fprintln(c.errOut, templateMessage(err))
		return 1
	case client.IsErrConnectionFailed(err):
		fmt.Fprintln(c.errOut, connectError(c.host()))
		return 1
	}
	fmt.Fprintln(c.errOut, err)
	return 1
}

// connectError is what a user sees when no daemon answers.
func connectError(host string) string {
	return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is berthd running?", host)
}

// rootCommand builds the command tree. It is built anew for each Run, so
// no flag state outlives an invocation.
func (c *CLI) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth [OPTIONS] COMMAND [ARG...]",
		Short: "A container engine with docker's command line",
		// Docker prints the root usage for a bare "docker".
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
		Args:                  cobra.ArbitraryArgs,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
		Version:               c.version,
		TraverseChildren:      true,
	}
	root.SetVersionTemplate(fmt.Sprintf("berth version %s, build %s\n", c.version, c.commitOrUnknown()))
	// Global flags come before the command name, as with docker; they are
	// not persistent, so that a command may reuse a letter ("history -H").
	flags := root.Flags()
	flags.StringVar(&c.configDir, "config", "", `Location of client config files (default "~/.docker")`)
	flags.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	listVarP(flags, &c.hosts, "list", "host", "H", "Daemon socket to connect to")
	flags.BoolP("version", "v", false, "Print version information and quit")

	root.AddGroup(
		&cobra.Group{ID: "common", Title: "Common Commands:"},
		&cobra.Group{ID: "management", Title: "Management Commands:"},
		&cobra.Group{ID: "other", Title: "Commands:"},
	)
	for _, cmd := range []*cobra.Command{c.containerCommand(), c.imageCommand(), c.builderCommand(), c.networkCommand(), c.systemCommand(), c.volumeCommand()} {
		cmd.GroupID = "management"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{
		c.runCommand(), c.execCommand(), c.psCommand("ps"), c.buildCommand(), c.pullCommand(), c.pushCommand(),
		c.imagesCommand("images"), c.loginCommand(), c.logoutCommand(), c.versionCommand(), c.infoCommand(),
	} {
		cmd.GroupID = "common"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{
		c.attachCommand(), c.commitCommand(), c.cpCommand(), c.createCommand(), c.diffCommand(),
		c.exportCommand(), c.historyCommand(), c.importCommand(), c.objectInspectCommand(),
		c.killCommand(), c.loadCommand(), c.logsCommand(), c.pauseCommand(), c.portCommand(),
		c.renameCommand(), c.restartCommand(), c.rmCommand(), c.rmiCommand("rmi"), c.saveCommand(),
		c.startCommand(), c.statsCommand(), c.stopCommand(), c.tagCommand(), c.topCommand(),
		c.unpauseCommand(), c.updateCommand(), c.waitCommand(),
	} {
		cmd.GroupID = "other"
		root.AddCommand(cmd)
	}
	setupUsage(root)
	return root
}

func (c *CLI) commitOrUnknown() string {
	if c.commit == "" {
		return "unknown"
	}
	return c.commit
}

// managementCommand is a command like "image" that only groups
// subcommands: alone it prints its usage, with an unknown subcommand it
// fails like docker.
func managementCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			cmd.SetOut(cmd.ErrOrStderr())
			return cmd.Help()
		},
		DisableFlagsInUseLine: true,
	}
}

// unknownCommand is docker 28's answer to "docker foo".
func unknownCommand(cmd *cobra.Command, name string) error {
	path := cmd.CommandPath()
	msg := fmt.Sprintf("berth: unknown command: %s %s\n\n", path, name)
	if cmd.HasParent() {
		msg += fmt.Sprintf("Usage:  %s\n\n", path)
	}
	msg += fmt.Sprintf("Run '%s --help' for more information", path)
	return &StatusError{Status: msg, Code: 1}
}

// templateMessage words a --format error like docker: "template parsing
// error: " and the template package's own message.
func templateMessage(err error) string {
	var msgs []string
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !errors.Is(e, format.ErrTemplate) && !errors.Is(e, errdefs.ErrInvalidArgument) {
				msgs = append(msgs, e.Error())
			}
		}
	}
	if len(msgs) == 0 {
		return err.Error()
	}
	return format.ErrTemplate.Error() + ": " + strings.Join(msgs, ": ")
}
