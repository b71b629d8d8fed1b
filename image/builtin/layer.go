package builtin

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// entry is one file of a layer. Every entry is owned by root.
type entry struct {
	name   string // relative, clean, no leading slash
	typ    byte   // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode   int64  // permission bits, with the sticky bit where wanted
	data   []byte // contents of a regular file
	target string // target of a symlink
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, target: target}
}

// layerCompression is the gzip level of every layer. It is fixed so that
// a berth build always makes the same layer bytes.
const layerCompression = gzip.BestCompression

// layer is a built layer: its gzip blob and the digest of its tar.
type layer struct {
	blob   []byte
	diffID digest.Digest
}

// buildLayer writes entries as a tar, sorted by name (so a directory comes
// before what it holds), every time set to mtime, and gzips it. The gzip
// header carries no name and no time. Two entries of the same name, or a
// name that is not a clean relative path, are errors: they are bugs here.
func buildLayer(entries []entry, mtime time.Time) (layer, error) {
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for i, e := range es {
		if e.name == "" || path.Clean(e.name) != e.name || path.IsAbs(e.name) || e.name == ".." || strings.HasPrefix(e.name, "../") {
			return layer{}, fmt.Errorf("layer entry %q: not a clean relative path", e.name)
		}
		if i > 0 && es[i-1].name == e.name {
			return layer{}, fmt.Errorf("layer entry %q: twice", e.name)
		}
		h := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Mode:     e.mode,
			ModTime:  mtime,
			Linkname: e.target,
			Format:   tar.FormatPAX,
		}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return layer{}, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return layer{}, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return layer{}, fmt.Errorf("layer: %w", err)
	}
	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, layerCompression)
	if err != nil {
		return layer{}, fmt.Errorf("layer: %w", err)
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return layer{}, fmt.Errorf("layer: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("layer: compress: %w", err)
	}
	return layer{blob: gzBuf.Bytes(), diffID: digest.FromBytes(tarBuf.Bytes())}, nil
}
