package cli

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// psOptions are the flags of "berth ps".
type psOptions struct {
	all, quiet, noTrunc, latest, size bool
	last                              int
	filters                           []string
	format                            string
}

func (c *CLI) psCommand(name string) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.ps(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	listVarP(f, &o.filters, "filter", "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", formatHelp)
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	return cmd
}

// psRow is one line of "berth ps". Fields are in alphabetical order so
// that --format json prints them in docker's order.
type psRow struct {
	Command      string
	CreatedAt    string
	ID           string
	Image        string
	Labels       string
	LocalVolumes string
	Mounts       string
	Names        string
	Networks     string
	Platform     *ocispec.Platform
	Ports        string
	RunningFor   string
	Size         string
	State        string
	Status       string

	labels map[string]string
}

// Label is the value of one label, for templates: {{.Label "com.x"}}.
func (r psRow) Label(name string) string { return r.labels[name] }

var psHeaders = map[string]string{
	"Command":      "COMMAND",
	"CreatedAt":    "CREATED AT",
	"ID":           "CONTAINER ID",
	"Image":        "IMAGE",
	"Labels":       "LABELS",
	"LocalVolumes": "LOCAL VOLUMES",
	"Mounts":       "MOUNTS",
	"Names":        "NAMES",
	"Networks":     "NETWORKS",
	"Platform":     "PLATFORM",
	"Ports":        "PORTS",
	"RunningFor":   "CREATED",
	"Size":         "SIZE",
	"State":        "STATE",
	"Status":       "STATUS",
}

const psDefaultTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func (c *CLI) ps(ctx context.Context, o psOptions) error {
	filters, err := parseFilters(o.filters)
	if err != nil {
		return err
	}
	var f format.Format
	switch {
	case o.quiet && (o.format == "" || o.format == "table"):
		f = format.Format{Template: "{{.ID}}"}
	case o.format == "" && o.size:
		f = format.Parse("", psDefaultTable+"\t{{.Size}}")
	default:
		f = format.Parse(o.format, psDefaultTable)
	}
	if _, err := format.NewTemplate(f.Template); err != nil {
		// ps words this differently from the other listings.
		msg := strings.TrimPrefix(templateMessage(err), format.ErrTemplate.Error()+": ")
		return &StatusError{Status: "failed to parse template: " + msg, Code: 1}
	}
	if o.latest && o.last == -1 {
		o.last = 1
	}
	// The daemon lists every state when given a limit, so -n and -l need
	// no --all.
	opts := client.ContainerListOptions{
		All:     o.all,
		Limit:   o.last,
		Size:    o.size || strings.Contains(f.Template, ".Size"),
		Filters: filters,
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ContainerList(ctx, opts)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]format.Row, 0, len(res.Items))
	for _, s := range res.Items {
		rows = append(rows, psRowOf(s, !o.noTrunc, now))
	}
	return format.Write(c.out, f, psHeaders, rows)
}

// psRowOf renders one container as docker's ps does; trunc shortens IDs,
// commands, image references and mount names.
func psRowOf(s container.Summary, trunc bool, now time.Time) psRow {
	created := time.Unix(s.Created, 0)
	r := psRow{
		Command:    s.Command,
		CreatedAt:  created.String(),
		ID:         s.ID,
		Image:      psImage(s, trunc),
		Names:      psNames(s.Names, trunc),
		Ports:      displayPorts(s.Ports),
		RunningFor: format.Since(created, now),
		State:      string(s.State),
		Status:     s.Status,
		labels:     s.Labels,
	}
	if d := s.ImageManifestDescriptor; d != nil {
		r.Platform = d.Platform
	}
	if trunc {
		r.ID = format.TruncateID(s.ID)
		r.Command = format.Ellipsis(s.Command, 20)
	}
	r.Command = strconv.Quote(r.Command)

	r.Size = format.Size(s.SizeRw)
	if s.SizeRootFs > 0 {
		r.Size = fmt.Sprintf("%s (virtual %s)", r.Size, format.Size(s.SizeRootFs))
	}

	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	r.Labels = strings.Join(labels, ",")

	var mounts []string
	local := 0
	for _, m := range s.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if trunc {
			name = format.Ellipsis(name, 15)
		}
		mounts = append(mounts, name)
		if m.Driver == "local" {
			local++
		}
	}
	r.Mounts = strings.Join(mounts, ",")
	r.LocalVolumes = strconv.Itoa(local)

	if s.NetworkSettings != nil {
		var nets []string
		for n := range s.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		slices.Sort(nets)
		r.Networks = strings.Join(nets, ",")
	}
	return r
}

// psNames drops the leading "/" of each name; truncated, it keeps only the
// container's own name (links show as "other/alias").
func psNames(names []string, trunc bool) string {
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimPrefix(n, "/"))
	}
	if trunc {
		for _, n := range out {
			if !strings.Contains(n, "/") {
				return n
			}
		}
	}
	return strings.Join(out, ",")
}

// psImage shows the image as the user named it; truncated, an image ID is
// shortened and a digest dropped from a reference.
func psImage(s container.Summary, trunc bool) string {
	if s.Image == "" {
		return "<no image>"
	}
	if !trunc {
		return s.Image
	}
	if short := format.TruncateID(s.ImageID); short == format.TruncateID(s.Image) {
		return short
	}
	ref, err := reference.ParseNormalizedNamed(s.Image)
	if err != nil {
		return s.Image
	}
	if tagged, ok := ref.(reference.NamedTagged); ok {
		if t, err := reference.WithTag(reference.TrimNamed(tagged), tagged.Tag()); err == nil {
			return reference.FamiliarString(t)
		}
		return s.Image
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

// displayPorts prints a container's ports like docker's ps: runs of
// consecutive ports with the same address and protocol collapse into a
// range ("0.0.0.0:80-81->80-81/tcp", "53/udp"), and ports published on
// another host port follow as "ip:host->private/proto".
func displayPorts(ports []container.PortSummary) string {
	sorted := slices.Clone(ports)
	slices.SortFunc(sorted, func(a, b container.PortSummary) int {
		switch {
		case a.PrivatePort != b.PrivatePort:
			return int(a.PrivatePort) - int(b.PrivatePort)
		case a.IP != b.IP:
			return strings.Compare(ipString(a), ipString(b))
		case a.PublicPort != b.PublicPort:
			return int(a.PublicPort) - int(b.PublicPort)
		}
		return strings.Compare(a.Type, b.Type)
	})
	var done []string
	var mapped []string
	open := map[string]*portRun{}
	var order []string
	for _, p := range sorted {
		key := p.Type
		ip := ipString(p)
		if ip != "" {
			if p.PublicPort != p.PrivatePort {
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			key = ip + "/" + p.Type
		}
		r := open[key]
		switch {
		case r == nil:
			order = append(order, key)
		case p.PrivatePort == r.last+1:
			r.last = p.PrivatePort
			continue
		default:
			done = append(done, r.String())
		}
		open[key] = &portRun{ip: ip, proto: p.Type, first: p.PrivatePort, last: p.PrivatePort}
	}
	for _, key := range order {
		done = append(done, open[key].String())
	}
	return strings.Join(append(done, mapped...), ", ")
}

// portRun is a run of consecutive private ports on one address and
// protocol, as ps shows them.
type portRun struct {
	ip, proto   string
	first, last uint16
}

func (r *portRun) String() string {
	ports := strconv.Itoa(int(r.first))
	if r.first != r.last {
		ports += "-" + strconv.Itoa(int(r.last))
	}
	if r.ip != "" {
		ports = r.ip + ":" + ports + "->" + ports
	}
	return ports + "/" + r.proto
}

func ipString(p container.PortSummary) string {
	if !p.IP.IsValid() {
		return ""
	}
	return p.IP.String()
}
