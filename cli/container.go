package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// containerCommand is "berth container": every container command under
// one name, with ls (and its aliases) and prune of its own.
func (c *CLI) containerCommand() *cobra.Command {
	cmd := managementCommand("container", "Manage containers")
	ls := c.psCommand("ls")
	ls.Aliases = []string{"list", "ps"}
	rm := c.rmCommand()
	rm.Aliases = []string{"remove"}
	cmd.AddCommand(append(c.containerVerbs(), ls, rm, c.containerPruneCommand())...)
	return cmd
}

// containerVerbs are the container commands that exist both at the top
// level and under "berth container" (rm and ps differ, and are apart).
func (c *CLI) containerVerbs() []*cobra.Command {
	return []*cobra.Command{
		c.attachCommand(), c.commitCommand(), c.cpCommand(), c.createCommand(), c.diffCommand(),
		c.execCommand(), c.exportCommand(), c.containerInspectCommand(), c.killCommand(),
		c.logsCommand(), c.pauseCommand(), c.portCommand(), c.renameCommand(), c.restartCommand(),
		c.runCommand(), c.startCommand(), c.statsCommand(), c.stopCommand(), c.topCommand(),
		c.unpauseCommand(), c.updateCommand(), c.waitCommand(),
	}
}

// eachContainer calls do for each named container, printing the name on
// success; failures do not stop the others and are reported together,
// with exit status 1, as docker does.
func (c *CLI) eachContainer(ctx context.Context, names []string, do func(context.Context, *client.Client, string) error) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	var failures []string
	for _, name := range names {
		if err := do(ctx, api, name); err != nil {
			if errors.Is(err, errReported) {
				continue
			}
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failures = append(failures, err.Error())
			continue
		}
		fmt.Fprintln(c.out, name)
	}
	if len(failures) > 0 {
		return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
	}
	return nil
}

// argsBetween is docker's check for a command that takes lo to hi
// arguments, worded as docker words it.
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return usageError(cmd, fmt.Sprintf("requires at least %d and at most %s", lo, plural(hi)), false)
	}
}

// errReported, returned by an eachContainer action, says that the action
// has already told the user about a failure that does not fail the
// command.
var errReported = errors.New("reported")

// timeoutFlag is -t/--timeout of stop and restart: unset means the
// container's own stop timeout.
func timeoutFlag(cmd *cobra.Command, t int) *int {
	if !cmd.Flags().Changed("timeout") {
		return nil
	}
	return &t
}

func (c *CLI) stopCommand() *cobra.Command {
	var timeout int
	var sig string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerStopOptions{Signal: sig, Timeout: timeoutFlag(cmd, timeout)}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerStop(ctx, id, opts)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	cmd.Flags().MarkHidden("time")
	return cmd
}

func (c *CLI) restartCommand() *cobra.Command {
	var timeout int
	var sig string
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerRestartOptions{Signal: sig, Timeout: timeoutFlag(cmd, timeout)}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerRestart(ctx, id, opts)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	return cmd
}

func (c *CLI) killCommand() *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: sig})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *CLI) rmCommand() *cobra.Command {
	var force, volumes, links bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: links}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				if strings.TrimSpace(id) == "" {
					return errors.New("Error: container name cannot be empty")
				}
				_, err := api.ContainerRemove(ctx, id, opts)
				if err != nil && force && isNotFound(err) {
					// Like docker, rm -f reports a missing container
					// but does not fail for it.
					fmt.Fprintln(c.errOut, err)
					return errReported
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&links, "link", "l", false, "Remove the specified link")
	return cmd
}

func (c *CLI) pauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func (c *CLI) unpauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				_, err := api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func (c *CLI) renameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			newName := strings.TrimSpace(args[1])
			if newName == "" {
				return errors.New("Error: neither old nor new names may be empty")
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := api.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: newName}); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, args[0])
			}
			return nil
		},
	}
}

func (c *CLI) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := c.client(ctx)
			if err != nil {
				return err
			}
			var failures []string
			for _, name := range args {
				w := api.ContainerWait(ctx, name, client.ContainerWaitOptions{})
				select {
				case res := <-w.Result:
					fmt.Fprintln(c.out, res.StatusCode)
				case err := <-w.Error:
					failures = append(failures, err.Error())
				}
			}
			if len(failures) > 0 {
				return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
			}
			return nil
		},
	}
}

func (c *CLI) topCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (c *CLI) portCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if ns := res.Container.NetworkSettings; ns != nil {
				ports = ns.Ports
			}
			lines, err := portLines(ports, args[0], args[1:])
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintln(c.out, l)
			}
			return nil
		},
	}
}

// portLines prints a container's published ports as "berth port" does:
// all as "80/tcp -> 0.0.0.0:8080" sorted by port, or the host addresses of
// one private port.
func portLines(ports network.PortMap, name string, want []string) ([]string, error) {
	if len(want) == 1 {
		p, err := network.ParsePort(withProto(want[0]))
		if err != nil {
			return nil, fmt.Errorf("Error: invalid port (%s): %w", want[0], err)
		}
		bindings, ok := ports[p]
		if !ok || len(bindings) == 0 {
			return nil, fmt.Errorf("Error: No public port '%s' published for %s", want[0], name)
		}
		var out []string
		for _, b := range bindings {
			out = append(out, hostAddress(b))
		}
		return out, nil
	}
	keys := make([]network.Port, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b network.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		return strings.Compare(string(a.Proto()), string(b.Proto()))
	})
	var out []string
	for _, p := range keys {
		for _, b := range ports[p] {
			out = append(out, fmt.Sprintf("%s -> %s", p, hostAddress(b)))
		}
	}
	return out, nil
}

func hostAddress(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
		if b.HostIP.Is6() {
			ip = "[" + ip + "]"
		}
	}
	return ip + ":" + b.HostPort
}

func (c *CLI) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				kind := map[container.ChangeType]string{container.ChangeModify: "C", container.ChangeAdd: "A", container.ChangeDelete: "D"}[ch.Kind]
				fmt.Fprintf(c.out, "%s %s\n", kind, ch.Path)
			}
			return nil
		},
	}
}

func (c *CLI) exportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && isTerminal(c.out) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			body, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer body.Close()
			return c.writeOutput(body, output, "export container")
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func (c *CLI) commitCommand() *cobra.Command {
	var message, author string
	var changes []string
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerCommit(cmd.Context(), args[0], client.ContainerCommitOptions{
				Reference: ref, Comment: message, Author: author, Changes: changes, NoPause: !pause,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	listVarP(f, &changes, "list", "change", "c", "Apply Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "Commit message")
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

func (c *CLI) updateCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			resources, err := o.resources()
			if err != nil {
				return err
			}
			opts := client.ContainerUpdateOptions{Resources: &resources}
			if cmd.Flags().Changed("restart") {
				p, err := parseRestartPolicy(o.restart)
				if err != nil {
					return err
				}
				opts.RestartPolicy = &p
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, id string) error {
				res, err := api.ContainerUpdate(ctx, id, opts)
				for _, w := range res.Warnings {
					fmt.Fprintln(c.errOut, w)
				}
				return err
			})
		},
	}
	o.flags = cmd.Flags()
	addResourceFlags(cmd.Flags(), &o)
	cmd.Flags().Lookup("restart").DefValue = ""
	o.restart = ""
	cmd.Flags().Int64Var(&o.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	cmd.Flags().MarkHidden("memory-swappiness")
	return cmd
}

func (c *CLI) containerPruneCommand() *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				ok, err := c.confirm("WARNING! This will remove all stopped containers.")
				if err != nil || !ok {
					return err
				}
			}
			_, space, err := c.pruneContainers(cmd.Context(), filters, true)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	listVarP(cmd.Flags(), &filters, "filter", "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// pruneContainers removes stopped containers, printing their IDs (under a
// title) when print is set, and returns how many went and the space freed.
func (c *CLI) pruneContainers(ctx context.Context, filterArgs []string, print bool) (int, uint64, error) {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return 0, 0, err
	}
	api, err := c.client(ctx)
	if err != nil {
		return 0, 0, err
	}
	res, err := api.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filters})
	if err != nil {
		return 0, 0, err
	}
	if print && len(res.Report.ContainersDeleted) > 0 {
		fmt.Fprintln(c.out, "Deleted Containers:")
		for _, id := range res.Report.ContainersDeleted {
			fmt.Fprintln(c.out, id)
		}
		fmt.Fprintln(c.out)
	}
	return len(res.Report.ContainersDeleted), res.Report.SpaceReclaimed, nil
}
