package engine

import (
	"context"
	"io"
	"os"

	"berth.dev/api/docker/backend"
	"berth.dev/build"
)

// Build unpacks the build context (a tar, plain or compressed), builds the
// image opts ask for with package build's Builder on the engine, and
// returns its ID. The progress text goes to out. The context directory is
// removed at the end, and so is everything the steps made but the layers.
func (b *Builds) Build(ctx context.Context, opts backend.BuildOptions, buildContext io.Reader, out io.Writer) (string, error) {
	dir, err := b.extractContext(ctx, buildContext)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	x := b.newExecutor()
	defer x.close()
	var bo []build.Option
	if b.epoch != nil {
		bo = append(bo, build.WithSourceDateEpoch(*b.epoch))
	}
	return build.New(x, bo...).Build(ctx, dir, build.Options{
		Tags: opts.Tags, Dockerfile: opts.Dockerfile, BuildArgs: opts.BuildArgs, Target: opts.Target,
		NoCache: opts.NoCache, Pull: opts.Pull, Labels: opts.Labels, Network: opts.Network,
		Platform: opts.Platform, Quiet: opts.Quiet, Output: out,
	})
}
