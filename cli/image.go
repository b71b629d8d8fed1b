package cli

import (
	"berth.dev/internal/atomicfile"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	mobyimage "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
	"berth.dev/cli/progress"
)

// imageCommand is "berth image": the image commands under one name.
func (c *CLI) imageCommand() *cobra.Command {
	cmd := managementCommand("image", "Manage images")
	history := c.historyCommand()
	imp := c.importCommand()
	load := c.loadCommand()
	pull := c.pullCommand()
	push := c.pushCommand()
	save := c.saveCommand()
	tag := c.tagCommand()
	cmd.AddCommand(
		c.buildCommand(), history, imp, c.imageInspectCommand(),
		load, c.imagesCommand("ls"), c.pruneCommand(), pull, push, c.rmiCommand("rm"), save, tag,
	)
	return cmd
}

func (c *CLI) pullCommand() *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.pull(cmd.Context(), args[0], platform, quiet)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func (c *CLI) pull(ctx context.Context, name, platform string, quiet bool) error {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return err
	}
	if reference.IsNameOnly(ref) {
		ref = reference.TagNameOnly(ref)
		if !quiet {
			fmt.Fprintln(c.out, "Using default tag: latest")
		}
	}
	if err := c.pullRef(ctx, ref, platform, c.out, quiet); err != nil {
		return err
	}
	fmt.Fprintln(c.out, ref.String())
	return nil
}

// pullRef pulls ref and shows the daemon's progress on out (pull: standard
// output; run and create: standard error), or nothing with quiet. A
// failure reported in the stream becomes an error with status 1.
func (c *CLI) pullRef(ctx context.Context, ref reference.Named, platform string, out io.Writer, quiet bool) error {
	opts := client.ImagePullOptions{}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	var err error
	if opts.RegistryAuth, err = c.registryAuth(ref); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	resp, err := api.ImagePull(ctx, ref.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return c.showProgressOn(resp, out, quiet)
}

func (c *CLI) pushCommand() *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.push(cmd.Context(), args[0], all, quiet, platform)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "Push a platform-specific manifest as a single-platform image to the registry")
	return cmd
}

func (c *CLI) push(ctx context.Context, name string, all, quiet bool, platform string) error {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return err
	}
	if all && !reference.IsNameOnly(ref) {
		return fmt.Errorf("tag can't be used with --all-tags/-a")
	}
	if !all && reference.IsNameOnly(ref) {
		ref = reference.TagNameOnly(ref)
		if !quiet {
			fmt.Fprintln(c.out, "Using default tag: latest")
		}
	}
	opts := client.ImagePushOptions{All: all}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platform = &p
	}
	if opts.RegistryAuth, err = c.registryAuth(ref); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	resp, err := api.ImagePush(ctx, ref.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := c.showProgress(resp, quiet); err != nil {
		return err
	}
	if quiet {
		fmt.Fprintln(c.out, ref.String())
	}
	return nil
}

// showProgress renders a JSON message stream to standard output (or
// nowhere when quiet); an error in the stream becomes the command's.
func (c *CLI) showProgress(r io.Reader, quiet bool) error {
	return c.showProgressOn(r, c.out, quiet)
}

// showProgressOn is showProgress on out.
func (c *CLI) showProgressOn(r io.Reader, out io.Writer, quiet bool) error {
	opts := progress.Options{Terminal: isTerminal(out), Width: terminalWidth(out)}
	if quiet {
		out, opts.Terminal = io.Discard, false
	}
	err := progress.Display(r, out, opts)
	var se *progress.StreamError
	if errors.As(err, &se) {
		return &StatusError{Status: se.Message, Code: 1}
	}
	return err
}

// parsePlatform reads "os[/arch[/variant]]".
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (c *CLI) tagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
	}
}

func (c *CLI) rmiCommand(name string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.rmi(cmd.Context(), args, force, noPrune)
		},
	}
	if name == "rm" {
		cmd.Aliases = []string{"rmi", "remove"}
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

// rmi removes each image in turn; failures do not stop the others and are
// reported together at the end, like docker.
func (c *CLI) rmi(ctx context.Context, names []string, force, noPrune bool) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	var failures []string
	for _, name := range names {
		res, err := api.ImageRemove(ctx, name, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
		if err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			if force && isNotFound(err) {
				// Docker reports the missing image but does not fail.
				fmt.Fprintln(c.errOut, err)
				continue
			}
			failures = append(failures, err.Error())
			continue
		}
		for _, d := range res.Items {
			if d.Untagged != "" {
				fmt.Fprintf(c.out, "Untagged: %s\n", d.Untagged)
			}
			if d.Deleted != "" {
				fmt.Fprintf(c.out, "Deleted: %s\n", d.Deleted)
			}
		}
	}
	if len(failures) > 0 {
		return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
	}
	return nil
}

func (c *CLI) saveCommand() *cobra.Command {
	var output, platform string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.save(cmd.Context(), args, output, platform)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&platform, "platform", "", "Save only the given platform variant")
	return cmd
}

func (c *CLI) save(ctx context.Context, names []string, output, platform string) error {
	if output == "" && isTerminal(c.out) {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	if output != "" {
		if fi, err := os.Stat(filepath.Dir(output)); err != nil || !fi.IsDir() {
			return fmt.Errorf("failed to save image: invalid output path: directory %q does not exist", filepath.Dir(output))
		}
	}
	var opts []client.ImageSaveOption
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts = append(opts, client.ImageSaveWithPlatforms(p))
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	body, err := api.ImageSave(ctx, names, opts...)
	if err != nil {
		return err
	}
	defer body.Close()
	return c.writeOutput(body, output, "save image")
}

func (c *CLI) loadCommand() *cobra.Command {
	var input, platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.load(cmd.Context(), input, quiet, platform)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	cmd.Flags().StringVar(&platform, "platform", "", "Load only the given platform variant")
	return cmd
}

func (c *CLI) load(ctx context.Context, input string, quiet bool, platform string) error {
	in := c.in
	if input != "" {
		f, err := os.Open(input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if isTerminal(c.in) {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	opts := []client.ImageLoadOption{client.ImageLoadWithQuiet(quiet || !isTerminal(c.out))}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts = append(opts, client.ImageLoadWithPlatforms(p))
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	resp, err := api.ImageLoad(ctx, in, opts...)
	if err != nil {
		return err
	}
	defer resp.Close()
	return c.showProgress(resp, false)
}

func (c *CLI) importCommand() *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return c.importImage(cmd.Context(), args[0], ref, changes, message, platform)
		},
	}
	listVarP(cmd.Flags(), &changes, "list", "change", "c", "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func (c *CLI) importImage(ctx context.Context, source, ref string, changes []string, message, platform string) error {
	src := client.ImageImportSource{SourceName: "-"}
	switch {
	case source == "-":
		src.Source = c.in
	case strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://"):
		src.SourceName = source
	default:
		f, err := os.Open(source)
		if err != nil {
			return err
		}
		defer f.Close()
		src.Source = f
	}
	opts := client.ImageImportOptions{Message: message, Changes: changes}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platform = p
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	resp, err := api.ImageImport(ctx, src, ref, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return c.showProgress(resp, false)
}

func (c *CLI) pruneCommand() *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.prune(cmd.Context(), all, force, filters)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	listVarP(cmd.Flags(), &filters, "filter", "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

const (
	pruneDanglingWarning = "WARNING! This will remove all dangling images."
	pruneAllWarning      = "WARNING! This will remove all images without at least one container associated to them."
)

func (c *CLI) prune(ctx context.Context, all, force bool, filterArgs []string) error {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return err
	}
	filters.Add("dangling", fmt.Sprint(!all))
	if !force {
		warning := pruneDanglingWarning
		if all {
			warning = pruneAllWarning
		}
		ok, err := c.confirm(warning)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: filters})
	if err != nil {
		return err
	}
	c.printDeletedImages(res.Report.ImagesDeleted)
	fmt.Fprintf(c.out, "Total reclaimed space: %s\n", format.Size(int64(res.Report.SpaceReclaimed)))
	return nil
}

// confirm asks a yes/no question on the terminal; anything but y or yes
// is no. Like docker, a non-interactive stdin counts as no.
func (c *CLI) confirm(warning string) (bool, error) {
	fmt.Fprintf(c.out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	answer, err := readLine(c.in)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}

// parseFilters reads --filter key=value flags.
func parseFilters(args []string) (client.Filters, error) {
	f := client.Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return f, nil
}

// isNotFound reports whether the daemon answered 404.
func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// printDeletedImages lists what an image prune removed, as docker does.
func (c *CLI) printDeletedImages(deleted []mobyimage.DeleteResponse) {
	if len(deleted) == 0 {
		return
	}
	fmt.Fprintln(c.out, "Deleted Images:")
	for _, d := range deleted {
		if d.Untagged != "" {
			fmt.Fprintf(c.out, "untagged: %s\n", d.Untagged)
		}
		if d.Deleted != "" {
			fmt.Fprintf(c.out, "deleted: %s\n", d.Deleted)
		}
	}
	fmt.Fprintln(c.out)
}

// writeOutput copies body to standard output, or with a file name through
// a temp file into it, so that a failure leaves no truncated file.
func (c *CLI) writeOutput(body io.Reader, output, what string) error {
	if output == "" {
		_, err := io.Copy(c.out, body)
		return err
	}
	if err := atomicfile.Write(output, body, 0o644); err != nil {
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	return nil
}
