// Package builtin makes the images berth can run on a machine that cannot
// reach a registry: hello-world, whose only file is a tiny executable
// generated here byte by byte, and busybox, made from the host's static
// busybox (Debian's busybox-static) and a symlink per applet.
//
// Archive writes one of them as the tar archive that `docker save` of
// docker 25 and later writes and that berth's, docker's and podman's
// load read: an OCI image layout (oci-layout, index.json, blobs/sha256)
// with a docker manifest.json beside it. The engine loads that archive in
// place of a pull that cannot reach docker.io. The archives are the same
// byte for byte every time on one host with one berth build: every
// timestamp is fixed (SOURCE_DATE_EPOCH when set, else the Unix epoch),
// entries are sorted and every owner is root.
package builtin

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/distribution/reference"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// The references of the built-in images.
const (
	HelloWorld = "docker.io/library/hello-world:latest"
	Busybox    = "docker.io/library/busybox:latest"
)

// DefaultBusyboxPath is where Debian's busybox-static installs busybox,
// the binary the busybox image carries.
const DefaultBusyboxPath = "/bin/busybox"

// Names lists the references of the built-in images, sorted
// ("docker.io/library/busybox:latest", "docker.io/library/hello-world:latest").
func Names() []string {
	names := []string{HelloWorld, Busybox}
	slices.Sort(names)
	return names
}

// Option changes how Archive builds an image.
type Option func(*options)

type options struct {
	busybox string
	created *time.Time
}

// WithBusybox makes the busybox image from the static busybox binary at
// path instead of DefaultBusyboxPath.
func WithBusybox(path string) Option { return func(o *options) { o.busybox = path } }

// WithCreated sets the time the image config, its history and every file
// carry, in place of SOURCE_DATE_EPOCH or the Unix epoch.
func WithCreated(t time.Time) Option {
	return func(o *options) { t := t.UTC(); o.created = &t }
}

// Archive writes the named built-in image to w as an OCI image layout tar
// archive that is also a docker save archive: oci-layout, index.json (one
// manifest, annotated with the full name in io.containerd.image.name and
// the tag in org.opencontainers.image.ref.name), blobs/sha256/<hex> (the
// manifest, the config and one gzip layer) and manifest.json. The name may
// be given in any form that normalises to a built-in reference
// ("busybox", "docker.io/library/busybox:latest").
//
// The image is for linux on the host's architecture. Its config, history
// and files carry the time of SOURCE_DATE_EPOCH (seconds since the epoch)
// if it is set, else 1970-01-01T00:00:00Z, so the archive is the same byte
// for byte on every call with the same berth build and host.
//
// Errors: errdefs.ErrNotFound for a name that is not built in;
// errdefs.ErrNotImplemented for hello-world on an architecture berth
// cannot generate code for (only amd64 and arm64); errdefs.ErrUnavailable
// when the host lacks what the image needs (busybox without a statically
// linked /bin/busybox: the message names the package to install);
// errdefs.ErrInvalidArgument for a SOURCE_DATE_EPOCH that is not a number.
// Nothing is written to w when building the image fails. Archive keeps no
// state between calls and may be called concurrently.
func Archive(ctx context.Context, name string, w io.Writer, opts ...Option) error {
	o := options{busybox: DefaultBusyboxPath}
	for _, opt := range opts {
		opt(&o)
	}
	ref, err := lookup(name)
	if err != nil {
		return err
	}
	created, err := createdTime(o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var spec imageSpec
	switch ref.String() {
	case HelloWorld:
		spec, err = helloWorld()
	case Busybox:
		spec, err = busybox(ctx, o.busybox)
	}
	if err != nil {
		return fmt.Errorf("built-in image %s: %w", image.FamiliarString(ref), err)
	}
	img, err := build(spec, image.DefaultPlatform(), created)
	if err != nil {
		return fmt.Errorf("built-in image %s: %w", image.FamiliarString(ref), err)
	}
	if err := writeArchive(w, ref, img, created); err != nil {
		return fmt.Errorf("built-in image %s: write archive: %w", image.FamiliarString(ref), err)
	}
	return nil
}

// lookup normalises name and checks that it is built in.
func lookup(name string) (reference.NamedTagged, error) {
	ref, err := image.ParseNormalized(name)
	if err != nil {
		// Not a reference at all: still "not built in", and only that.
		return nil, fmt.Errorf("%w: no built-in image %q (%v)", errdefs.ErrNotFound, name, err)
	}
	tagged, ok := ref.(reference.NamedTagged)
	if !ok || !slices.Contains(Names(), ref.String()) {
		return nil, fmt.Errorf("%w: no built-in image %q (built in: hello-world, busybox)", errdefs.ErrNotFound, name)
	}
	return tagged, nil
}

// createdTime is the time every part of the image carries: the option,
// else SOURCE_DATE_EPOCH, else the epoch.
func createdTime(o options) (time.Time, error) {
	if o.created != nil {
		return *o.created, nil
	}
	s, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH %q: want seconds since the epoch", errdefs.ErrInvalidArgument, s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
