package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// systemCommand is "berth system".
func (c *CLI) systemCommand() *cobra.Command {
	cmd := managementCommand("system", "Manage berth")
	cmd.AddCommand(c.diskUsageCommand(), c.infoCommand(), c.systemPruneCommand())
	return cmd
}

func (c *CLI) systemPruneCommand() *cobra.Command {
	var all, force, volumes bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.systemPrune(cmd.Context(), all, force, volumes, filters)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	listVarP(f, &filters, "filter", "filter", "", `Provide filter values (e.g. "label=<key>=<value>")`)
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	return cmd
}

// systemPrune removes stopped containers, unused networks, then (with --volumes) unused
// anonymous volumes, then dangling (or, with -a, unused) images, and adds
// up the space freed.
func (c *CLI) systemPrune(ctx context.Context, all, force, volumes bool, filterArgs []string) error {
	if !force {
		warning := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
		if volumes {
			warning += "  - all anonymous volumes not used by at least one container\n"
		}
		if all {
			warning += "  - all images without at least one container associated to them\n"
			warning += "  - all build cache\n"
		} else {
			warning += "  - all dangling images\n"
			warning += "  - unused build cache\n"
		}
		ok, err := c.confirm(warning)
		if err != nil || !ok {
			return err
		}
	}
	_, total, err := c.pruneContainers(ctx, filterArgs, true)
	if err != nil {
		return err
	}
	if err := c.pruneNetworks(ctx, filterArgs); err != nil {
		return err
	}
	if volumes {
		_, space, err := c.pruneVolumes(ctx, false, filterArgs, true)
		if err != nil {
			return err
		}
		total += space
	}
	imageFilters, err := parseFilters(filterArgs)
	if err != nil {
		return err
	}
	imageFilters.Add("dangling", fmt.Sprint(!all))
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: imageFilters})
	if err != nil {
		return err
	}
	c.printDeletedImages(res.Report.ImagesDeleted)
	total += res.Report.SpaceReclaimed
	space, err := c.pruneBuildCache(ctx, all, filterArgs)
	if err != nil {
		return err
	}
	total += space
	fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(total)))
	return nil
}

func (c *CLI) builderCommand() *cobra.Command {
	cmd := managementCommand("builder", "Manage builds")
	cmd.AddCommand(c.buildCommand(), c.builderPruneCommand())
	return cmd
}

func (c *CLI) builderPruneCommand() *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := "WARNING! This will remove all dangling build cache."
				if all {
					warning = "WARNING! This will remove all build cache."
				}
				if ok, err := c.confirm(warning); err != nil || !ok {
					return err
				}
			}
			space, err := c.pruneBuildCache(cmd.Context(), all, filters)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	listVarP(f, &filters, "filter", "filter", "", `Provide filter values (e.g. "until=24h")`)
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// pruneBuildCache removes the build cache the filters select, prints the
// entries removed as docker does, and returns the space freed.
func (c *CLI) pruneBuildCache(ctx context.Context, all bool, filterArgs []string) (uint64, error) {
	f, err := parseFilters(filterArgs)
	if err != nil {
		return 0, err
	}
	api, err := c.client(ctx)
	if err != nil {
		return 0, err
	}
	res, err := api.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all, Filters: f})
	if err != nil {
		return 0, err
	}
	if ids := res.Report.CachesDeleted; len(ids) > 0 {
		fmt.Fprintln(c.out, "Deleted build cache objects:")
		for _, id := range ids {
			fmt.Fprintln(c.out, id)
		}
		fmt.Fprintln(c.out)
	}
	return res.Report.SpaceReclaimed, nil
}

func (c *CLI) versionCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.showVersion(cmd.Context(), tmpl)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	return cmd
}

// clientVersion is the "Client" half of "berth version".
type clientVersion struct {
	Platform   struct{ Name string }
	Version    string
	APIVersion string `json:"ApiVersion"`
	GoVersion  string
	GitCommit  string
	BuildTime  string `json:",omitempty"`
	Os         string
	Arch       string
	Context    string
}

// versionInfo is what --format templates of "berth version" see.
type versionInfo struct {
	Client clientVersion
	Server *system.VersionResponse
}

func (c *CLI) showVersion(ctx context.Context, tmplText string) error {
	v := versionInfo{Client: clientVersion{
		Version:    c.version,
		APIVersion: client.MaxAPIVersion,
		GoVersion:  runtime.Version(),
		GitCommit:  c.commit,
		Os:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Context:    "default",
	}}
	v.Client.Platform.Name = "berth"
	var serverErr error
	api, err := c.client(ctx)
	if err == nil {
		var res client.ServerVersionResult
		res, serverErr = api.ServerVersion(ctx, client.ServerVersionOptions{})
		if serverErr == nil {
			v.Client.APIVersion = api.ClientVersion()
			v.Server = &system.VersionResponse{
				Platform:      system.PlatformInfo{Name: res.Platform.Name},
				Version:       res.Version,
				APIVersion:    res.APIVersion,
				MinAPIVersion: res.MinAPIVersion,
				Os:            res.Os,
				Arch:          res.Arch,
				Experimental:  res.Experimental,
				Components:    res.Components,
			}
		}
	} else {
		serverErr = err
	}

	if tmplText != "" {
		if tmplText == "json" {
			tmplText = "{{json .}}"
		}
		t, err := format.NewTemplate(tmplText)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(c.out, b.String())
		return serverErr
	}
	tw := tabwriter.NewWriter(c.out, 20, 1, 1, ' ', 0)
	writeClientVersion(tw, v.Client)
	if v.Server != nil {
		writeServerVersion(tw, v.Server)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return serverErr
}

func writeClientVersion(w io.Writer, cv clientVersion) {
	fmt.Fprintf(w, "Client:\n")
	fmt.Fprintf(w, " Version:\t%s\n", cv.Version)
	fmt.Fprintf(w, " API version:\t%s\n", cv.APIVersion)
	fmt.Fprintf(w, " Go version:\t%s\n", cv.GoVersion)
	fmt.Fprintf(w, " Git commit:\t%s\n", cv.GitCommit)
	fmt.Fprintf(w, " Built:\t%s\n", cv.BuildTime)
	fmt.Fprintf(w, " OS/Arch:\t%s/%s\n", cv.Os, cv.Arch)
	fmt.Fprintf(w, " Context:\t%s\n", cv.Context)
}

// writeServerVersion prints each component; for the engine, fields its
// details lack are taken from the top-level answer.
func writeServerVersion(w io.Writer, sv *system.VersionResponse) {
	fmt.Fprintf(w, "\nServer:")
	if sv.Platform.Name != "" {
		fmt.Fprintf(w, " %s", sv.Platform.Name)
	}
	fmt.Fprintln(w)
	for _, comp := range sv.Components {
		fmt.Fprintf(w, " %s:\n", comp.Name)
		fmt.Fprintf(w, "  Version:\t%s\n", comp.Version)
		if comp.Name != "Engine" {
			keys := make([]string, 0, len(comp.Details))
			for k := range comp.Details {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s:\t%s\n", k, comp.Details[k])
			}
			continue
		}
		detail := func(key, fallback string) string {
			if v := comp.Details[key]; v != "" {
				return v
			}
			return fallback
		}
		fmt.Fprintf(w, "  API version:\t%s (minimum version %s)\n", detail("ApiVersion", sv.APIVersion), detail("MinAPIVersion", sv.MinAPIVersion))
		fmt.Fprintf(w, "  Go version:\t%s\n", detail("GoVersion", sv.GoVersion))
		fmt.Fprintf(w, "  Git commit:\t%s\n", detail("GitCommit", sv.GitCommit))
		fmt.Fprintf(w, "  Built:\t%s\n", detail("BuildTime", sv.BuildTime))
		fmt.Fprintf(w, "  OS/Arch:\t%s/%s\n", detail("Os", sv.Os), detail("Arch", sv.Arch))
		fmt.Fprintf(w, "  Experimental:\t%s\n", detail("Experimental", fmt.Sprint(sv.Experimental)))
	}
}

func (c *CLI) infoCommand() *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.info(cmd.Context(), tmpl)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	return cmd
}

// clientInfo is the "Client" section of "berth info".
type clientInfo struct {
	Version string
	Context string
	Debug   bool
}

// infoData is what --format templates of "berth info" see: the daemon's
// fields at the top level, like docker's.
type infoData struct {
	*system.Info
	ClientInfo   clientInfo
	ServerErrors []string `json:",omitempty"`
}

func (c *CLI) info(ctx context.Context, tmplText string) error {
	data := infoData{ClientInfo: clientInfo{Version: c.version, Context: "default", Debug: c.debug}}
	var serverErr error
	api, err := c.client(ctx)
	if err == nil {
		var res client.SystemInfoResult
		if res, serverErr = api.Info(ctx, client.InfoOptions{}); serverErr == nil {
			data.Info = &res.Info
		}
	} else {
		serverErr = err
	}
	if tmplText != "" {
		if tmplText == "json" {
			tmplText = "{{json .}}"
		}
		t, err := format.NewTemplate(tmplText)
		if err != nil {
			return err
		}
		if serverErr != nil {
			return serverErr
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(c.out, b.String())
		return nil
	}
	fmt.Fprintf(c.out, "Client:\n Version:    %s\n Context:    %s\n Debug Mode: %v\n\nServer:\n", c.version, "default", c.debug)
	if serverErr != nil {
		return serverErr
	}
	writeServerInfo(c.out, data.Info, c.debug)
	for _, w := range data.Info.Warnings {
		fmt.Fprintln(c.errOut, w)
	}
	return nil
}

// writeServerInfo prints the daemon's information in docker's layout.
func writeServerInfo(w io.Writer, info *system.Info, debug bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p(" Containers: %d", info.Containers)
	p("  Running: %d", info.ContainersRunning)
	p("  Paused: %d", info.ContainersPaused)
	p("  Stopped: %d", info.ContainersStopped)
	p(" Images: %d", info.Images)
	p(" Server Version: %s", info.ServerVersion)
	p(" Storage Driver: %s", info.Driver)
	for _, kv := range info.DriverStatus {
		if len(kv) == 2 {
			p("  %s: %s", kv[0], kv[1])
		}
	}
	nonEmpty := func(label, value string) {
		if value != "" {
			p(" %s: %s", label, value)
		}
	}
	nonEmpty("Logging Driver", info.LoggingDriver)
	nonEmpty("Cgroup Driver", info.CgroupDriver)
	nonEmpty("Cgroup Version", info.CgroupVersion)
	p(" Plugins:")
	p("  Volume: %s", strings.Join(info.Plugins.Volume, " "))
	p("  Network: %s", strings.Join(info.Plugins.Network, " "))
	if len(info.Plugins.Authorization) > 0 {
		p("  Authorization: %s", strings.Join(info.Plugins.Authorization, " "))
	}
	p("  Log: %s", strings.Join(info.Plugins.Log, " "))
	p(" Swarm: %s", info.Swarm.LocalNodeState)
	if len(info.Runtimes) > 0 {
		names := make([]string, 0, len(info.Runtimes))
		for name := range info.Runtimes {
			names = append(names, name)
		}
		slices.Sort(names)
		p(" Runtimes: %s", strings.Join(names, " "))
		p(" Default Runtime: %s", info.DefaultRuntime)
	}
	p(" Init Binary: %s", info.InitBinary)
	p(" containerd version: %s", info.ContainerdCommit.ID)
	p(" runc version: %s", info.RuncCommit.ID)
	p(" init version: %s", info.InitCommit.ID)
	if len(info.SecurityOptions) > 0 {
		p(" Security Options:")
		for _, opt := range info.SecurityOptions {
			writeSecurityOption(w, opt)
		}
	}
	nonEmpty("Kernel Version", info.KernelVersion)
	nonEmpty("Operating System", info.OperatingSystem)
	nonEmpty("OSType", info.OSType)
	nonEmpty("Architecture", info.Architecture)
	p(" CPUs: %d", info.NCPU)
	p(" Total Memory: %s", units.BytesSize(float64(info.MemTotal)))
	p(" Name: %s", info.Name)
	p(" ID: %s", info.ID)
	p(" Docker Root Dir: %s", info.DockerRootDir)
	p(" Debug Mode: %v", info.Debug)
	if info.Debug {
		p("  File Descriptors: %d", info.NFd)
		p("  Goroutines: %d", info.NGoroutines)
		p("  System Time: %s", info.SystemTime)
		p("  EventsListeners: %d", info.NEventsListener)
	}
	for _, proxy := range [][2]string{{"HTTP Proxy", info.HTTPProxy}, {"HTTPS Proxy", info.HTTPSProxy}, {"No Proxy", info.NoProxy}} {
		if proxy[1] != "" {
			p(" %s: %s", proxy[0], proxy[1])
		}
	}
	if len(info.Labels) > 0 {
		p(" Labels:")
		for _, l := range info.Labels {
			p("  %s", l)
		}
	}
	p(" Experimental: %v", info.ExperimentalBuild)
	if rc := info.RegistryConfig; rc != nil {
		var insecure []string
		for _, cidr := range rc.InsecureRegistryCIDRs {
			insecure = append(insecure, cidr.String())
		}
		for name, idx := range rc.IndexConfigs {
			if !idx.Secure && !slices.Contains(insecure, name) {
				insecure = append(insecure, name)
			}
		}
		if len(insecure) > 0 {
			slices.Sort(insecure)
			p(" Insecure Registries:")
			for _, r := range insecure {
				p("  %s", r)
			}
		}
		if len(rc.Mirrors) > 0 {
			p(" Registry Mirrors:")
			for _, m := range rc.Mirrors {
				p("  %s", m)
			}
		}
	}
	p(" Live Restore Enabled: %v", info.LiveRestoreEnabled)
	fmt.Fprintln(w)
}

// writeSecurityOption prints "name=seccomp,profile=builtin" as docker
// does: the name, then its other fields indented below it.
func writeSecurityOption(w io.Writer, opt string) {
	var name string
	var rest [][2]string
	for _, field := range strings.Split(opt, ",") {
		k, v, _ := strings.Cut(field, "=")
		if k == "name" {
			name = v
			continue
		}
		rest = append(rest, [2]string{k, v})
	}
	if name == "" {
		name = opt
	}
	fmt.Fprintf(w, "  %s\n", name)
	for _, kv := range rest {
		key := kv[0]
		if key != "" {
			key = strings.ToUpper(key[:1]) + key[1:]
		}
		fmt.Fprintf(w, "   %s: %s\n", key, kv[1])
	}
}

func (c *CLI) diskUsageCommand() *cobra.Command {
	var verbose bool
	var tmpl string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.diskUsage(cmd.Context(), verbose, tmpl)
		},
	}
	cmd.Flags().StringVar(&tmpl, "format", "", formatHelp)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

// diskUsageRow is one line of "berth system df".
type diskUsageRow struct {
	Active      string
	Reclaimable string
	Size        string
	TotalCount  string
	Type        string
}

var diskUsageHeaders = map[string]string{
	"Active":      "ACTIVE",
	"Reclaimable": "RECLAIMABLE",
	"Size":        "SIZE",
	"TotalCount":  "TOTAL",
	"Type":        "TYPE",
}

func (c *CLI) diskUsage(ctx context.Context, verbose bool, tmplText string) error {
	f := format.Parse(tmplText, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	du, err := api.DiskUsage(ctx, client.DiskUsageOptions{
		Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: verbose,
	})
	if err != nil {
		return err
	}
	if verbose && tmplText == "" {
		return c.diskUsageVerbose(du)
	}
	row := func(kind string, total, active, size, reclaimable int64) format.Row {
		r := diskUsageRow{
			Type:        kind,
			TotalCount:  fmt.Sprint(total),
			Active:      fmt.Sprint(active),
			Size:        units.HumanSize(float64(size)),
			Reclaimable: units.HumanSize(float64(reclaimable)),
		}
		if size > 0 && kind != "Build Cache" {
			r.Reclaimable = fmt.Sprintf("%s (%d%%)", r.Reclaimable, reclaimable*100/size)
		}
		return r
	}
	rows := []format.Row{
		row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable),
		row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable),
		row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable),
		row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable),
	}
	return format.Write(c.out, f, diskUsageHeaders, rows)
}

// diskUsageVerbose prints "system df -v": a table per kind of object.
func (c *CLI) diskUsageVerbose(du client.DiskUsageResult) error {
	now := time.Now()
	fmt.Fprint(c.out, "Images space usage:\n\n")
	var images []format.Row
	for _, img := range du.Images.Items {
		for _, r := range imageRows(img, false, true, now) {
			images = append(images, r)
		}
	}
	if err := format.Write(c.out, format.Format{Table: true,
		Template: "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"},
		imageHeaders, images); err != nil {
		return err
	}

	fmt.Fprint(c.out, "\nContainers space usage:\n\n")
	type containerRow struct{ ID, Image, Command, LocalVolumes, Size, CreatedSince, Status, Names string }
	var containers []format.Row
	for _, ct := range du.Containers.Items {
		names := make([]string, 0, len(ct.Names))
		for _, n := range ct.Names {
			names = append(names, strings.TrimPrefix(n, "/"))
		}
		containers = append(containers, containerRow{
			ID:           format.TruncateID(ct.ID),
			Image:        ct.Image,
			Command:      fmt.Sprintf("%q", format.Ellipsis(ct.Command, 20)),
			LocalVolumes: fmt.Sprint(len(ct.Mounts)),
			Size:         format.Size(ct.SizeRw),
			CreatedSince: format.Since(time.Unix(ct.Created, 0), now),
			Status:       ct.Status,
			Names:        strings.Join(names, ","),
		})
	}
	if err := format.Write(c.out, format.Format{Table: true,
		Template: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.CreatedSince}}\t{{.Status}}\t{{.Names}}"},
		map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
			"Size": "SIZE", "CreatedSince": "CREATED", "Status": "STATUS", "Names": "NAMES"},
		containers); err != nil {
		return err
	}

	fmt.Fprint(c.out, "\nLocal Volumes space usage:\n\n")
	type volumeRow struct{ Name, Links, Size string }
	var volumes []format.Row
	for _, v := range du.Volumes.Items {
		r := volumeRow{Name: v.Name, Links: "N/A", Size: "N/A"}
		if v.UsageData != nil {
			r.Links = fmt.Sprint(v.UsageData.RefCount)
			if v.UsageData.Size >= 0 {
				r.Size = format.Size(v.UsageData.Size)
			}
		}
		volumes = append(volumes, r)
	}
	if err := format.Write(c.out, format.Format{Table: true, Template: "{{.Name}}\t{{.Links}}\t{{.Size}}"},
		map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}, volumes); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "\nBuild cache usage: %s\n\n", units.HumanSize(float64(du.BuildCache.TotalSize)))
	return format.Write(c.out, format.Format{Table: true, Template: "{{.ID}}\t{{.Type}}\t{{.Size}}\t{{.Created}}\t{{.LastUsed}}\t{{.Usage}}\t{{.Shared}}"},
		map[string]string{"ID": "CACHE ID", "Type": "CACHE TYPE", "Size": "SIZE", "Created": "CREATED", "LastUsed": "LAST USED", "Usage": "USAGE", "Shared": "SHARED"},
		nil)
}
