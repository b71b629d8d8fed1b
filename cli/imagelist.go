package cli

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// formatHelp and formatHelpNoTable are docker's help for --format, with
// and without the table forms.
const (
	formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
` + formatHelpTail
	formatHelpNoTable = `Format output using a custom template:
` + formatHelpTail
	formatHelpTail = `'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`
)

func (c *CLI) imagesCommand(name string) *cobra.Command {
	var opts imagesOptions
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.filters = append(opts.filters, "reference="+args[0])
			}
			return c.images(cmd.Context(), opts)
		},
	}
	if name == "ls" {
		cmd.Aliases = []string{"list"}
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVar(&opts.digests, "digests", false, "Show digests")
	listVarP(f, &opts.filters, "filter", "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&opts.format, "format", "", formatHelp)
	f.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

type imagesOptions struct {
	all, digests, noTrunc, quiet bool
	filters                      []string
	format                       string
}

// imageRow is one line of "berth images". Fields are in alphabetical
// order so that --format json prints them in docker's order.
type imageRow struct {
	Containers   string
	CreatedAt    string
	CreatedSince string
	Digest       string
	ID           string
	Repository   string
	SharedSize   string
	Size         string
	Tag          string
	UniqueSize   string
	VirtualSize  string
}

var imageHeaders = map[string]string{
	"Containers":   "CONTAINERS",
	"CreatedAt":    "CREATED AT",
	"CreatedSince": "CREATED",
	"Digest":       "DIGEST",
	"ID":           "IMAGE ID",
	"Repository":   "REPOSITORY",
	"SharedSize":   "SHARED SIZE",
	"Size":         "SIZE",
	"Tag":          "TAG",
	"UniqueSize":   "UNIQUE SIZE",
	"VirtualSize":  "VIRTUAL SIZE",
}

func (c *CLI) images(ctx context.Context, opts imagesOptions) error {
	filters, err := parseFilters(opts.filters)
	if err != nil {
		return err
	}
	// Parse the template before asking the daemon, so a typo costs no
	// round trip.
	f := c.imagesFormat(opts)
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ImageList(ctx, client.ImageListOptions{All: opts.all, Filters: filters})
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []format.Row
	for _, img := range res.Items {
		for _, r := range imageRows(img, opts.digests, !opts.noTrunc, now) {
			rows = append(rows, r)
		}
	}
	return format.Write(c.out, f, imageHeaders, rows)
}

func (c *CLI) imagesFormat(opts imagesOptions) format.Format {
	if opts.quiet {
		return format.Format{Template: "{{.ID}}"}
	}
	def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if opts.digests {
		def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	value := opts.format
	if value == "" {
		value = c.configFormat("imagesFormat")
	}
	return format.Parse(value, def)
}

// imageRows turns an image into its lines: one per repository and tag
// (per digest too when digests are shown), one for a repository known only
// by digest, and a "<none>" line for a dangling image.
func imageRows(img image.Summary, digests, trunc bool, now time.Time) []imageRow {
	base := imageRow{
		ID:           img.ID,
		CreatedAt:    time.Unix(img.Created, 0).String(),
		CreatedSince: format.Since(time.Unix(img.Created, 0), now),
		Size:         format.Size(img.Size),
		VirtualSize:  units.HumanSize(float64(img.Size)),
		Containers:   "N/A",
		SharedSize:   "N/A",
		UniqueSize:   "N/A",
	}
	if trunc {
		base.ID = format.TruncateID(img.ID)
	}
	if img.Containers >= 0 {
		base.Containers = strconv.FormatInt(img.Containers, 10)
	}
	if img.SharedSize >= 0 {
		base.SharedSize = format.Size(img.SharedSize)
		base.UniqueSize = format.Size(img.Size - img.SharedSize)
	}
	row := func(repo, tag, digest string) imageRow {
		r := base
		r.Repository, r.Tag, r.Digest = repo, tag, digest
		return r
	}

	var repos []string
	tags := map[string][]string{}
	repoDigests := map[string][]string{}
	addRepo := func(name string) {
		if _, ok := tags[name]; !ok {
			if _, ok := repoDigests[name]; !ok {
				repos = append(repos, name)
			}
		}
	}
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if t, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			addRepo(name)
			tags[name] = append(tags[name], t.Tag())
		}
	}
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if d, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			addRepo(name)
			repoDigests[name] = append(repoDigests[name], d.Digest().String())
		}
	}
	if len(repos) == 0 {
		return []imageRow{row("<none>", "<none>", "<none>")}
	}

	var rows []imageRow
	for _, repo := range repos {
		ds := repoDigests[repo]
		if len(tags[repo]) == 0 {
			// Known by digest only.
			if !digests {
				rows = append(rows, row(repo, "<none>", "<none>"))
				continue
			}
			for _, d := range ds {
				rows = append(rows, row(repo, "<none>", d))
			}
			continue
		}
		for _, tag := range tags[repo] {
			if !digests || len(ds) == 0 {
				rows = append(rows, row(repo, tag, "<none>"))
				continue
			}
			for _, d := range ds {
				rows = append(rows, row(repo, tag, d))
			}
		}
	}
	return rows
}

func (c *CLI) historyCommand() *cobra.Command {
	var opts historyOptions
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.history(cmd.Context(), args[0], opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.format, "format", "", formatHelp)
	f.BoolVarP(&opts.human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&opts.platform, "platform", "", "Show history for the given platform")
	return cmd
}

type historyOptions struct {
	human, noTrunc, quiet bool
	format, platform      string
}

// historyRow is one line of "berth history", fields in alphabetical order.
type historyRow struct {
	Comment      string
	CreatedAt    string
	CreatedBy    string
	CreatedSince string
	ID           string
	Size         string
}

var historyHeaders = map[string]string{
	"Comment":      "COMMENT",
	"CreatedAt":    "CREATED AT",
	"CreatedBy":    "CREATED BY",
	"CreatedSince": "CREATED",
	"ID":           "IMAGE",
	"Size":         "SIZE",
}

func (c *CLI) history(ctx context.Context, name string, opts historyOptions) error {
	f := format.Parse(opts.format, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
	if opts.quiet {
		f = format.Format{Template: "{{.ID}}"}
	}
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	var hopts []client.ImageHistoryOption
	if opts.platform != "" {
		p, err := parsePlatform(opts.platform)
		if err != nil {
			return err
		}
		hopts = append(hopts, client.ImageHistoryWithPlatform(p))
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ImageHistory(ctx, name, hopts...)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]format.Row, 0, len(res.Items))
	for _, h := range res.Items {
		rows = append(rows, historyRowOf(h, opts.human, !opts.noTrunc, now))
	}
	headers := historyHeaders
	if !opts.human {
		headers = maps.Clone(historyHeaders)
		headers["CreatedSince"] = "CREATED AT"
	}
	return format.Write(c.out, f, headers, rows)
}

func historyRowOf(h image.HistoryResponseItem, human, trunc bool, now time.Time) historyRow {
	created := time.Unix(h.Created, 0)
	r := historyRow{
		Comment:      h.Comment,
		CreatedAt:    created.Format(time.RFC3339),
		CreatedBy:    strings.ReplaceAll(h.CreatedBy, "\t", " "),
		CreatedSince: created.Format(time.RFC3339),
		ID:           h.ID,
		Size:         strconv.FormatInt(h.Size, 10),
	}
	if human {
		r.CreatedSince = format.Since(created, now)
		r.Size = format.Size(h.Size)
	}
	if trunc {
		r.ID = format.TruncateID(h.ID)
		if h.ID == "<missing>" {
			r.ID = h.ID
		}
		r.CreatedBy = format.Ellipsis(r.CreatedBy, 45)
	}
	return r
}

// imageInspectCommand is "berth image inspect".
func (c *CLI) imageInspectCommand() *cobra.Command {
	var tmpl, platform string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []client.ImageInspectOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageInspectWithPlatform(&p))
			}
			return c.inspectObjects(cmd.Context(), args, tmpl, false, []inspectKind{imageKind(opts...)}, false)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	cmd.Flags().StringVar(&platform, "platform", "", "Inspect a specific platform of the multi-platform image")
	return cmd
}
