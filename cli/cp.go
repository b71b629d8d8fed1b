package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/archive"
)

func (c *CLI) cpCommand() *cobra.Command {
	var archiveMode, followLink, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := parseCopyArgs(args[0], args[1])
			if err != nil {
				return err
			}
			op.archiveMode, op.followLink = archiveMode, followLink
			if op.fromContainer {
				return c.copyFromContainer(cmd.Context(), op)
			}
			return c.copyToContainer(cmd.Context(), op)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&archiveMode, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// copyOp is one "berth cp": a container path and a local one ("-" for a
// tar on standard input or output), in the direction given.
type copyOp struct {
	container     string
	containerPath string
	localPath     string
	fromContainer bool
	archiveMode   bool
	followLink    bool
}

// splitCopyArg reads "CONTAINER:PATH" or a local path. A path that is
// absolute or starts with "." is local even if it holds a colon.
func splitCopyArg(arg string) (container, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	name, rest, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(name, ".") {
		return "", arg
	}
	return name, rest
}

// parseCopyArgs decides the direction of a copy from its two arguments.
func parseCopyArgs(src, dst string) (copyOp, error) {
	srcCtr, srcPath := splitCopyArg(src)
	dstCtr, dstPath := splitCopyArg(dst)
	switch {
	case srcPath == "":
		return copyOp{}, invalid("source can not be empty")
	case dstPath == "":
		return copyOp{}, invalid("destination can not be empty")
	case srcCtr != "" && dstCtr != "":
		return copyOp{}, invalid("copying between containers is not supported")
	case srcCtr == "" && dstCtr == "":
		return copyOp{}, invalid("must specify at least one container source")
	case srcCtr != "":
		return copyOp{container: srcCtr, containerPath: srcPath, localPath: dstPath, fromContainer: true}, nil
	}
	return copyOp{container: dstCtr, containerPath: dstPath, localPath: srcPath}, nil
}

// copyFromContainer fetches the container path as a tar and writes it to
// standard output ("-") or unpacks it at the local path with docker's
// naming: into an existing directory under the source's name, else as the
// destination itself; "src/." copies a directory's content.
func (c *CLI) copyFromContainer(ctx context.Context, op copyOp) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	srcPath := op.containerPath
	if op.followLink {
		st, err := api.ContainerStatPath(ctx, op.container, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 && st.Stat.LinkTarget != "" {
			srcPath = st.Stat.LinkTarget
		}
	}
	res, err := api.CopyFromContainer(ctx, op.container, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if op.localPath == "-" {
		_, err := io.Copy(c.out, res.Content)
		return err
	}
	dir, rename, err := localCopyTarget(op.localPath, res.Stat.Name, res.Stat.Mode.IsDir(), strings.HasSuffix(op.containerPath, "/."))
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(renameTar(pw, res.Content, res.Stat.Name, rename)) }()
	if _, err := archive.Apply(ctx, dir, pr, archive.WithNoSameOwner(), archive.WithoutDevices()); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copy to %s: %w", op.localPath, err)
	}
	return nil
}

// localCopyTarget says where a copied tree lands: the directory to unpack
// in and the name its top entry takes there ("" to unpack a directory's
// content directly into dir).
func localCopyTarget(dest, srcName string, srcIsDir, contentOnly bool) (dir, name string, err error) {
	fi, statErr := os.Stat(dest)
	switch {
	case statErr == nil && fi.IsDir():
		if srcIsDir && contentOnly {
			return dest, "", nil
		}
		return dest, srcName, nil
	case statErr == nil:
		if srcIsDir {
			return "", "", invalid("cannot copy a directory to a file: %s", dest)
		}
		return filepath.Dir(dest), filepath.Base(dest), nil
	case errors.Is(statErr, fs.ErrNotExist):
		if strings.HasSuffix(dest, string(filepath.Separator)) && !srcIsDir {
			return "", "", fmt.Errorf("destination directory %s does not exist: %w", dest, fs.ErrNotExist)
		}
		parent := filepath.Dir(filepath.Clean(dest))
		if _, err := os.Stat(parent); err != nil {
			return "", "", err
		}
		if srcIsDir && contentOnly {
			if err := os.Mkdir(dest, 0o755); err != nil {
				return "", "", err
			}
			return dest, "", nil
		}
		return parent, filepath.Base(filepath.Clean(dest)), nil
	}
	return "", "", statErr
}

// renameTar copies a tar whose entries sit under top, replacing that first
// path element with name (or dropping it when name is empty).
func renameTar(w io.Writer, r io.Reader, top, name string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	rebase := func(p string) (string, bool) {
		p = strings.TrimPrefix(path.Clean(p), "./")
		rest, found := strings.CutPrefix(p, top)
		if !found || (rest != "" && !strings.HasPrefix(rest, "/")) {
			return p, true
		}
		if name == "" {
			rest = strings.TrimPrefix(rest, "/")
			return rest, rest != ""
		}
		return name + rest, true
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		n, keep := rebase(hdr.Name)
		if !keep {
			continue
		}
		hdr.Name = n
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname, _ = rebase(hdr.Linkname)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// copyToContainer sends a tar of the local path (or standard input's tar,
// for "-") into the container with docker's naming: into an existing
// directory under the source's name, else as the destination itself.
func (c *CLI) copyToContainer(ctx context.Context, op copyOp) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	if op.localPath == "-" {
		_, err := api.CopyToContainer(ctx, op.container, client.CopyToContainerOptions{
			DestinationPath: op.containerPath, Content: c.in, CopyUIDGID: op.archiveMode,
		})
		return err
	}
	stat := os.Lstat
	if op.followLink {
		stat = os.Stat
	}
	fi, err := stat(op.localPath)
	if err != nil {
		return err
	}
	contentOnly := fi.IsDir() && strings.HasSuffix(op.localPath, "/.")
	destDir, name := op.containerPath, filepath.Base(filepath.Clean(op.localPath))
	// A destination that is a symbolic link in the container is followed,
	// as docker's cp does: its target (relative to the link's directory)
	// is what the copy goes into.
	st, err := api.ContainerStatPath(ctx, op.container, client.ContainerStatPathOptions{Path: op.containerPath})
	for hops := 0; err == nil && st.Stat.Mode&os.ModeSymlink != 0 && st.Stat.LinkTarget != "" && hops < 40; hops++ {
		target := st.Stat.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(path.Clean(op.containerPath)), target)
		}
		op.containerPath = target
		st, err = api.ContainerStatPath(ctx, op.container, client.ContainerStatPathOptions{Path: op.containerPath})
	}
	switch {
	case err == nil && st.Stat.Mode.IsDir():
		if contentOnly {
			name = ""
		}
	case err == nil:
		if fi.IsDir() {
			return invalid("cannot copy a directory to a file: %s", op.containerPath)
		}
		destDir, name = path.Dir(op.containerPath), path.Base(op.containerPath)
	case isNotFound(err):
		if strings.HasSuffix(op.containerPath, "/") && !fi.IsDir() {
			return fmt.Errorf("destination directory %s does not exist in the container: %w", op.containerPath, fs.ErrNotExist)
		}
		destDir, name = path.Dir(path.Clean(op.containerPath)), path.Base(path.Clean(op.containerPath))
		if contentOnly {
			return invalid("destination %s does not exist; copying a directory's content needs an existing directory", op.containerPath)
		}
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteTree(ctx, pw, op.localPath, name, op.followLink)) }()
	_, err = api.CopyToContainer(ctx, op.container, client.CopyToContainerOptions{
		DestinationPath: destDir, Content: pr, CopyUIDGID: op.archiveMode,
	})
	pr.CloseWithError(err)
	return err
}
