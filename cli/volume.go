package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// volumeCommand is "berth volume".
func (c *CLI) volumeCommand() *cobra.Command {
	cmd := managementCommand("volume", "Manage volumes")
	cmd.AddCommand(c.volumeCreateCommand(), c.volumeInspectCommand(), c.volumeListCommand(),
		c.volumePruneCommand(), c.volumeRemoveCommand())
	return cmd
}

func (c *CLI) volumeCreateCommand() *cobra.Command {
	var name, driver string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			driverOpts, err := keyValueMap(opts, "opt")
			if err != nil {
				return err
			}
			labelMap := map[string]string{}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				labelMap[k] = v
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: driverOpts, Labels: labelMap,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.Volume.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	listVarP(f, &labels, "list", "label", "", "Set metadata for a volume")
	f.StringVar(&name, "name", "", "Specify volume name")
	f.MarkHidden("name")
	listVarP(f, &opts, "map", "opt", "o", "Set driver specific options")
	return cmd
}

func (c *CLI) volumeInspectCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspectObjects(cmd.Context(), args, tmpl, false, []inspectKind{volumeKind()}, false)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	return cmd
}

// volumeRow is one line of "berth volume ls". Fields are in alphabetical
// order so that --format json prints them in docker's order.
type volumeRow struct {
	Availability string
	Driver       string
	Group        string
	Labels       string
	Links        string
	Mountpoint   string
	Name         string
	Scope        string
	Size         string
	Status       string

	labels map[string]string
}

// Label is the value of one label, for templates: {{.Label "com.x"}}.
func (r volumeRow) Label(name string) string { return r.labels[name] }

var volumeHeaders = map[string]string{
	"Availability": "AVAILABILITY",
	"Driver":       "DRIVER",
	"Group":        "GROUP",
	"Labels":       "LABELS",
	"Links":        "LINKS",
	"Mountpoint":   "MOUNTPOINT",
	"Name":         "VOLUME NAME",
	"Scope":        "SCOPE",
	"Size":         "SIZE",
	"Status":       "STATUS",
}

func (c *CLI) volumeListCommand() *cobra.Command {
	var quiet bool
	var tmpl string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.volumeList(cmd.Context(), quiet, tmpl, filters)
		},
	}
	f := cmd.Flags()
	listVarP(f, &filters, "filter", "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	f.StringVar(&tmpl, "format", "", formatHelp)
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	return cmd
}

func (c *CLI) volumeList(ctx context.Context, quiet bool, tmpl string, filterArgs []string) error {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return err
	}
	f := format.Parse(tmpl, "table {{.Driver}}\t{{.Name}}")
	if quiet && (tmpl == "" || tmpl == "table") {
		f = format.Format{Template: "{{.Name}}"}
	}
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: filters})
	if err != nil {
		return err
	}
	items := slices.Clone(res.Items)
	slices.SortFunc(items, func(a, b volume.Volume) int { return strings.Compare(a.Name, b.Name) })
	rows := make([]format.Row, 0, len(items))
	for _, v := range items {
		rows = append(rows, volumeRowOf(v))
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.errOut, w)
	}
	return format.Write(c.out, f, volumeHeaders, rows)
}

func volumeRowOf(v volume.Volume) volumeRow {
	r := volumeRow{
		Driver: v.Driver, Name: v.Name, Scope: v.Scope, Mountpoint: v.Mountpoint,
		Links: "N/A", Size: "N/A", labels: v.Labels,
		// Cluster volumes have these; local ones never do.
		Availability: "N/A", Group: "N/A", Status: "N/A",
	}
	var labels []string
	for k, val := range v.Labels {
		labels = append(labels, k+"="+val)
	}
	slices.Sort(labels)
	r.Labels = strings.Join(labels, ",")
	if v.UsageData != nil {
		r.Links = strconv.FormatInt(v.UsageData.RefCount, 10)
		if v.UsageData.Size >= 0 {
			r.Size = format.Size(v.UsageData.Size)
		}
	}
	return r
}

func (c *CLI) volumeRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, api *client.Client, name string) error {
				_, err := api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

const (
	volumePruneWarning    = "WARNING! This will remove anonymous local volumes not used by at least one container."
	volumePruneAllWarning = "WARNING! This will remove all local volumes not used by at least one container."
)

func (c *CLI) volumePruneCommand() *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := volumePruneWarning
				if all {
					warning = volumePruneAllWarning
				}
				ok, err := c.confirm(warning)
				if err != nil || !ok {
					return err
				}
			}
			_, space, err := c.pruneVolumes(cmd.Context(), all, filters, true)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	listVarP(cmd.Flags(), &filters, "filter", "filter", "", `Provide filter values (e.g. "label=<label>")`)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// pruneVolumes removes unused volumes (anonymous ones unless all),
// printing their names under a title when print is set.
func (c *CLI) pruneVolumes(ctx context.Context, all bool, filterArgs []string, print bool) (int, uint64, error) {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return 0, 0, err
	}
	api, err := c.client(ctx)
	if err != nil {
		return 0, 0, err
	}
	res, err := api.VolumePrune(ctx, client.VolumePruneOptions{All: all, Filters: filters})
	if err != nil {
		return 0, 0, err
	}
	if print && len(res.Report.VolumesDeleted) > 0 {
		fmt.Fprintln(c.out, "Deleted Volumes:")
		for _, v := range res.Report.VolumesDeleted {
			fmt.Fprintln(c.out, v)
		}
		fmt.Fprintln(c.out)
	}
	return len(res.Report.VolumesDeleted), res.Report.SpaceReclaimed, nil
}
