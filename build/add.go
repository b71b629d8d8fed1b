package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"berth.dev/internal/errdefs"
)

// fetchedURL is an ADD source URL downloaded to a temporary file.
type fetchedURL struct {
	url   string
	file  string
	size  int64
	mtime time.Time
}

// fetch downloads an ADD source URL (the Builder's HTTP client bounds the
// time it takes).
func (bd *build) fetch(u string) (fetchedURL, error) {
	fail := func(err error) (fetchedURL, error) {
		return fetchedURL{}, &categorized{err: fmt.Errorf("failed to fetch %s: %w", u, err), cat: errdefs.ErrUnavailable}
	}
	req, err := http.NewRequestWithContext(bd.ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetchedURL{}, invalid(fmt.Errorf("failed to fetch %s: %w", u, err))
	}
	resp, err := bd.b.httpClient.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(fmt.Errorf("status %s", resp.Status))
	}
	f, err := os.CreateTemp("", "berth-build-add-*")
	if err != nil {
		return fetchedURL{}, fmt.Errorf("fetch %s: %w", u, err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fail(err)
	}
	fu := fetchedURL{url: u, file: f.Name(), size: n}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			fu.mtime = t
		}
	}
	return fu, nil
}

// emitURL emits a fetched URL as a file of mode 0600 (as docker does),
// named after the URL's last path element when the destination is a
// directory.
func (p *copyPlan) emitURL(f fetchedURL, e emitter) error {
	name := p.dest
	if p.dirDest {
		u, err := url.Parse(f.url)
		if err != nil {
			return invalid(err)
		}
		base := path.Base(u.Path)
		if base == "." || base == "/" || base == "" {
			return invalid(fmt.Errorf("cannot determine filename from url: %s", f.url))
		}
		name = path.Join(p.dest, base)
	}
	e.match("file")
	mtime := f.mtime
	if mtime.IsZero() {
		mtime = p.epoch
	}
	body, err := os.Open(f.file)
	if err != nil {
		return err
	}
	defer body.Close()
	return e.entry(p.header(name, tar.TypeReg, 0o600, f.size, mtime), &exactReader{r: body, n: f.size, name: f.url})
}

// extract emits the entries of the tar archive (plain, gzip, bzip2, xz
// or zstd) that open reads under the destination directory, keeping their
// owners and modes, with times clamped. It reports false, emitting
// nothing, when the file is no tar archive: ADD then copies it as it is.
func (p *copyPlan) extract(open func() (io.ReadCloser, error), e emitter) (bool, error) {
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return false, nil
		}
		defer gz.Close()
		r = gz
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return false, nil
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return false, nil
		}
		r = xr
	}
	tbr := bufio.NewReaderSize(r, 64<<10)
	block, _ := tbr.Peek(512)
	if len(block) < 512 || !bytes.HasPrefix(block[257:], []byte("ustar")) {
		return false, nil
	}
	tr := tar.NewReader(tbr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, invalid(fmt.Errorf("%s: extract archive: %w", p.req.name, err))
		}
		name := path.Join(p.dest, path.Clean("/"+hdr.Name))
		if name == p.dest || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		h := &tar.Header{
			Typeflag: hdr.Typeflag, Name: strings.TrimPrefix(name, "/"), Mode: hdr.Mode & 0o7777,
			Uid: hdr.Uid, Gid: hdr.Gid, ModTime: clamp(hdr.ModTime, p.epoch), Format: tar.FormatPAX,
			Devmajor: hdr.Devmajor, Devminor: hdr.Devminor,
		}
		var body io.Reader
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			h.Typeflag = tar.TypeReg
			h.Size = hdr.Size
			body = tr
		case tar.TypeSymlink:
			h.Linkname = hdr.Linkname
		case tar.TypeLink:
			h.Linkname = strings.TrimPrefix(path.Join(p.dest, path.Clean("/"+hdr.Linkname)), "/")
		case tar.TypeDir, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		default:
			continue
		}
		if err := e.entry(h, body); err != nil {
			return true, err
		}
	}
}
