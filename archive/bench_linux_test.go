package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchContentLimit bounds the content taken from /usr/lib for the
// benchmark layer.
const benchContentLimit = 192 << 20

// benchLayer tars /usr/lib (directories, files, symlinks; up to
// benchContentLimit bytes of content) into memory, as a realistic layer.
func benchLayer(b *testing.B) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var total int64
	err := filepath.WalkDir("/usr/lib", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip
		}
		if total > benchContentLimit {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return nil
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = p[1:]
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			total += n
			return err
		}
		return tw.WriteHeader(hdr)
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkApply compares Apply (with DecompressStream) to GNU tar on the
// same layer, gzip'd and plain, into a fresh directory each time.
func BenchmarkApply(b *testing.B) {
	layer := benchLayer(b)
	var gz bytes.Buffer
	zw, err := CompressStream(&gz, Gzip)
	if err != nil {
		b.Fatal(err)
	}
	zw.Write(layer)
	zw.Close()
	work := b.TempDir()
	files := map[string][]byte{"layer.tar": layer, "layer.tar.gz": gz.Bytes()}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(work, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("layer: %d MiB tar, %d MiB gzip", len(layer)>>20, gz.Len()>>20)

	run := func(b *testing.B, size int, extract func(dest string) error) {
		b.SetBytes(int64(size))
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			dest := filepath.Join(work, "dest")
			os.RemoveAll(dest)
			if err := os.Mkdir(dest, 0o755); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := extract(dest); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		os.RemoveAll(filepath.Join(work, "dest"))
	}
	berth := func(src []byte) func(string) error {
		return func(dest string) error {
			r, _, err := DecompressStream(bytes.NewReader(src))
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = Apply(context.Background(), dest, r)
			return err
		}
	}
	gnuTar := func(flags, file string) func(string) error {
		return func(dest string) error {
			out, err := exec.Command("tar", flags, filepath.Join(work, file), "-C", dest).CombinedOutput()
			if err != nil {
				b.Logf("tar: %s", out)
			}
			return err
		}
	}
	b.Run("gzip/berth", func(b *testing.B) { run(b, len(layer), berth(gz.Bytes())) })
	b.Run("gzip/tar-xzf", func(b *testing.B) { run(b, len(layer), gnuTar("-xzf", "layer.tar.gz")) })
	b.Run("plain/berth", func(b *testing.B) { run(b, len(layer), berth(layer)) })
	b.Run("plain/tar-xf", func(b *testing.B) { run(b, len(layer), gnuTar("-xf", "layer.tar")) })
}
