package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// Import makes an image of one layer from src, a tar of a root filesystem
// (uncompressed, gzip or zstd), as docker import does: the tar is applied
// into a new layer snapshot and, at the same time, compressed with gzip
// into the layer blob; the config carries opts.Changes (Dockerfile
// instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
// WORKDIR, STOPSIGNAL) and a history entry with opts.Message. With
// opts.Ref the image is named; without, it has only its ID.
func (s *Images) Import(ctx context.Context, src io.Reader, opts backend.ImportOptions, pw backend.ProgressWriter) (_ string, err error) {
	defer s.unpacker.sync.poke() // the layers it unpacked: synced now
	platform := s.platform
	if opts.Platform != "" {
		var err error
		if platform, err = image.ParsePlatform(opts.Platform); err != nil {
			return "", err
		}
	}
	created := time.Now().UTC()
	cfg := image.Config{}
	cfg.Created = &created
	cfg.OS, cfg.Architecture, cfg.Variant = platform.OS, platform.Architecture, platform.Variant
	for _, ch := range opts.Changes {
		if err := applyChange(&cfg, ch); err != nil {
			return "", err
		}
	}
	tar, _, err := archive.DecompressStream(src)
	if err != nil {
		return "", fmt.Errorf("%w: import: %w", errdefs.ErrInvalidArgument, err)
	}
	defer tar.Close()

	s.mu.RLock()
	defer s.mu.RUnlock()
	layer, diffID, err := s.storeLayer(ctx, "", tar, fmt.Sprintf("import-%d", created.UnixNano()))
	if err != nil {
		return "", fmt.Errorf("%w: import: %w", errdefs.ErrInvalidArgument, err)
	}

	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &created, Comment: comment}}
	id, err := s.storeImage(ctx, cfg, []ocispec.Descriptor{layer}, opts.Ref)
	if err != nil {
		return "", err
	}
	s.events.Publish(events.ImageEventType, events.ActionImport, id.String(), nil)
	return id.String(), nil
}

// applyChange applies one Dockerfile instruction of docker import -c (or
// commit -c) to an image config.
func applyChange(cfg *image.Config, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	c := &cfg.Config
	bad := func(why string) error {
		return fmt.Errorf("%w: change %q: %s", errdefs.ErrInvalidArgument, change, why)
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = commandArgs(rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandArgs(rest)
	case "ENV":
		pairs, err := keyValues(rest)
		if err != nil {
			return bad(err.Error())
		}
		for _, kv := range pairs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(rest)
		if err != nil {
			return bad(err.Error())
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range commandArgs(rest) {
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		c.User = rest
	case "WORKDIR":
		c.WorkingDir = rest
	case "STOPSIGNAL":
		c.StopSignal = rest
	default:
		return bad("berth applies CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR and STOPSIGNAL")
	}
	if rest == "" {
		return bad("no value")
	}
	return nil
}

// commandArgs reads a JSON array (exec form) or a shell command (shell
// form, run with /bin/sh -c).
func commandArgs(s string) []string {
	var args []string
	if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &args) == nil {
		return args
	}
	return []string{"/bin/sh", "-c", s}
}

// keyValues reads "k=v k2=v2" (quotes allowed) or the old "k v" form.
func keyValues(s string) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	var cur bytes.Buffer
	var quote rune
	words := []string{}
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == ' ':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// storeLayer stores the uncompressed layer tar read from tar as a gzip blob
// (under the ingest ref) and unpacks it on top of the layer snapshot parent
// ("" for none), in one pass. It returns the blob's descriptor and the
// layer's diff ID. On error nothing is left of the blob or the snapshot.
// The caller holds s.mu for reading.
func (s *Images) storeLayer(ctx context.Context, parent digest.Digest, tar io.Reader, ref string) (_ ocispec.Descriptor, _ digest.Digest, err error) {
	w, err := s.content.Writer(ctx, ref, ocispec.Descriptor{})
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer func() {
		w.Close()
		if err != nil {
			// Nothing to resume: a layer made here is never retried from where it stopped.
			s.content.Abort(context.WithoutCancel(ctx), ref)
		}
	}()
	gz, err := archive.CompressStream(w, archive.Gzip)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	chain := func(d digest.Digest) (digest.Digest, error) {
		if parent == "" {
			return d, nil
		}
		return image.ChainIDs([]digest.Digest{parent, d})[1], nil
	}
	_, diffID, err := s.unpacker.apply(ctx, parent, io.TeeReader(tar, gz), chain)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	st, err := w.Status()
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: st.Offset}
	if err := w.Commit(ctx, layer.Size, layer.Digest); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return ocispec.Descriptor{}, "", err
	}
	return layer, diffID, nil
}

// storeImage stores cfg and a manifest of layers, names the image ref when
// not empty, and returns the image ID.
func (s *Images) storeImage(ctx context.Context, cfg image.Config, layers []ocispec.Descriptor, ref string) (digest.Digest, error) {
	cfgData, cfgDesc, err := image.EncodeConfig(cfg, ocispec.MediaTypeImageConfig)
	if err != nil {
		return "", err
	}
	if err := s.storeBytes(ctx, cfgDesc, cfgData); err != nil {
		return "", err
	}
	man := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: layers}
	man.SchemaVersion = 2
	mdata, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	mdesc := ocispec.Descriptor{MediaType: man.MediaType, Digest: digest.FromBytes(mdata), Size: int64(len(mdata))}
	if err := s.storeBytes(ctx, mdesc, mdata); err != nil {
		return "", err
	}
	id := cfgDesc.Digest
	img := image.Image{Name: "", Target: mdesc, ConfigDigest: id}
	if ref != "" {
		named, err := image.ParseNormalized(ref)
		if err != nil {
			return "", err
		}
		img.Name = named.String()
		if _, err := s.putName(ctx, img); err != nil {
			return "", err
		}
		return id, nil
	}
	// An image without a name is kept as a dangling one, unless a name
	// already holds the same image.
	named, err := s.names.List(ctx, image.WithID(id))
	if err != nil {
		return "", err
	}
	if len(named) == 0 {
		if err := s.dangling.put(ctx, img); err != nil {
			return "", err
		}
	}
	return id, nil
}
