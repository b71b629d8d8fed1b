package cli

import (
	"context"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *CLI) logsCommand() *cobra.Command {
	var opts client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ShowStdout, opts.ShowStderr = true, true
			return c.logs(cmd.Context(), args[0], opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	f.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	f.StringVar(&opts.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVarP(&opts.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVar(&opts.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}

// logs copies a container's log: as written for a tty container, else
// split back into standard output and error.
func (c *CLI) logs(ctx context.Context, name string, opts client.ContainerLogsOptions) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	body, err := api.ContainerLogs(ctx, res.Container.ID, opts)
	if err != nil {
		return err
	}
	defer body.Close()
	if res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(c.out, body)
		return err
	}
	_, err = stdcopy.StdCopy(c.out, c.errOut, body)
	return err
}
