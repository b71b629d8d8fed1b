package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"berth.dev/internal/errdefs"
)

// copyRequest is a COPY or ADD instruction, expanded.
type copyRequest struct {
	name     string // "COPY" or "ADD"
	srcs     []string
	contents []instructions.SourceContent
	dest     string
	from     string
	chown    string
	chmod    string
	parents  bool
	excludes []string
	add      bool // ADD: URLs, and local archives extracted when unpack
	unpack   bool
}

// copyPlan is what a COPY or ADD writes, resolved: it is walked twice,
// once to hash what would be written (the cache key) and once to write it.
type copyPlan struct {
	req     copyRequest
	dest    string // absolute, cleaned
	dirDest bool   // sources go into dest rather than become it
	tree    tree
	uid     int
	gid     int
	chmod   *int64
	fetched []fetchedURL
	epoch   time.Time
	// mkdirs are the missing directories the copy creates, owned by
	// --chown's owner; mkDest tells that dest, missing, is made too when
	// a directory's contents are copied into it.
	mkdirs []string
	mkDest bool
}

// emitter receives a copy's entries: match announces each source match
// ("file" or "dir") before its entries.
type emitter struct {
	match func(kind string)
	entry func(hdr *tar.Header, body io.Reader) error
}

func (bd *build) copyStep(st *stage, req copyRequest) error {
	if req.parents || len(req.excludes) > 0 {
		return fmt.Errorf("%w: %s --parents and --exclude need BuildKit", errdefs.ErrNotImplemented, req.name)
	}
	p, cleanup, err := bd.copyPlan(st, req)
	defer cleanup()
	if err != nil {
		return err
	}
	infos, err := p.hash(bd)
	if err != nil {
		return err
	}
	chown := ""
	if req.chown != "" {
		chown = "--chown=" + req.chown
	}
	createdBy := fmt.Sprintf("%s #(nop) %s %s%s in %s ", strings.Join(st.shell(), " "), req.name, chown, sourceHash(infos), req.dest)
	key := bd.cacheKey(st.state, req.name, createdBy, req.chmod, strings.Join(p.mkdirs, "\x00"), strconv.FormatBool(p.mkDest))
	l, err := bd.layerStep(key, func() (Layer, error) { return bd.applyCopy(st, p) })
	if err != nil {
		return err
	}
	bd.addLayer(st, l, createdBy)
	return nil
}

// copyPlan resolves req's destination, owner, mode and source tree, and
// fetches its URLs; cleanup removes what it fetched.
func (bd *build) copyPlan(st *stage, req copyRequest) (*copyPlan, func(), error) {
	p := &copyPlan{req: req, tree: bd.context, epoch: bd.epoch}
	cleanup := func() {
		for _, f := range p.fetched {
			os.Remove(f.file)
		}
	}
	nsrc := len(req.srcs) + len(req.contents)
	if nsrc == 0 {
		return p, cleanup, invalid(fmt.Errorf("%s requires at least two arguments", req.name))
	}
	dest := req.dest
	p.dirDest = strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		wd := st.state.Config.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	p.dest = path.Clean(dest)
	if p.dest == "/" {
		p.dirDest = true
	}
	fsrc, hasFS := bd.b.x.(FileSource)
	if !p.dirDest && hasFS {
		if fi, err := fsrc.Stat(bd.ctx, st.state, p.dest); err == nil && fi.IsDir() {
			p.dirDest = true
		}
	}
	if nsrc > 1 && !p.dirDest {
		return p, cleanup, invalid(fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /", req.name))
	}
	if req.chown != "" {
		uid, gid, err := bd.chownIDs(st, req.chown)
		if err != nil {
			return p, cleanup, err
		}
		p.uid, p.gid = uid, gid
	}
	if req.chown != "" && hasFS {
		// As docker does, the directories the copy creates belong to
		// the --chown owner too.
		for dir := p.dest; dir != "/"; dir = path.Dir(dir) {
			_, err := fsrc.Stat(bd.ctx, st.state, dir)
			if err == nil {
				break
			}
			if !errors.Is(err, errdefs.ErrNotFound) {
				return p, cleanup, fmt.Errorf("%s: %w", req.name, err)
			}
			if dir == p.dest {
				p.mkDest = true
			} else {
				p.mkdirs = append([]string{dir}, p.mkdirs...)
			}
		}
		if p.mkDest && p.dirDest {
			p.mkdirs = append(p.mkdirs, p.dest)
			p.mkDest = false
		}
	}
	if req.chmod != "" {
		m, err := strconv.ParseUint(req.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return p, cleanup, invalid(fmt.Errorf("invalid chmod parameter: %s", req.chmod))
		}
		mode := int64(m)
		p.chmod = &mode
	}
	if req.from != "" {
		from, err := bd.args.expandMeta(req.from, bd.escape)
		if err != nil {
			return p, cleanup, invalid(err)
		}
		if !hasFS {
			return p, cleanup, fmt.Errorf("%w: COPY --from: the engine cannot read images' files", errdefs.ErrNotImplemented)
		}
		var s State
		if j, ok := bd.stageRef(from, len(bd.stages)); ok && bd.results[j] != nil {
			s = bd.results[j].state
		} else {
			img, err := bd.image(from)
			if err != nil {
				return p, cleanup, fmt.Errorf("COPY --from=%s: %w", from, err)
			}
			s = img
		}
		p.tree = &exportTree{fs: fsrc, state: s, ctx: bd.ctx}
	}
	if req.add {
		for _, src := range req.srcs {
			if isURL(src) {
				f, err := bd.fetch(src)
				if err != nil {
					return p, cleanup, err
				}
				p.fetched = append(p.fetched, f)
			}
		}
	}
	return p, cleanup, nil
}

// sourceInfo is one source match: its kind and the digest of what it
// writes.
type sourceInfo struct {
	kind string
	h    hash.Hash
}

func (i sourceInfo) String() string { return i.kind + ":" + hex.EncodeToString(i.h.Sum(nil)) }

// sourceHash is docker's name of a copy's sources in history:
// "file:<hex>" or "dir:<hex>" for one, "multi:<hex>" for several.
func sourceHash(infos []sourceInfo) string {
	if len(infos) == 1 {
		return infos[0].String()
	}
	var s []string
	for _, i := range infos {
		s = append(s, i.String())
	}
	sum := sha256.Sum256([]byte(strings.Join(s, ",")))
	return "multi:" + hex.EncodeToString(sum[:])
}

// hash walks the plan hashing every entry as it would be written.
func (p *copyPlan) hash(bd *build) ([]sourceInfo, error) {
	var infos []sourceInfo
	err := bd.emit(p, emitter{
		match: func(kind string) { infos = append(infos, sourceInfo{kind: kind, h: sha256.New()}) },
		entry: func(hdr *tar.Header, body io.Reader) error {
			h := infos[len(infos)-1].h
			fmt.Fprintf(h, "%q %c %o %d %d %d %q %d\n", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Size, hdr.Linkname, hdr.ModTime.Unix())
			if body != nil {
				if _, err := io.Copy(h, body); err != nil {
					return err
				}
			}
			return nil
		},
	})
	return infos, err
}

// applyCopy writes the plan as a tar into Executor.Apply.
func (bd *build) applyCopy(st *stage, p *copyPlan) (Layer, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for _, d := range p.mkdirs {
			if err = tw.WriteHeader(p.dirHeader(d)); err != nil {
				break
			}
		}
		if err == nil {
			err = bd.emit(p, emitter{
				match: func(string) {},
				entry: func(hdr *tar.Header, body io.Reader) error {
					if err := tw.WriteHeader(hdr); err != nil {
						return err
					}
					if body != nil {
						if _, err := io.Copy(tw, body); err != nil {
							return err
						}
					}
					return nil
				},
			})
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	l, err := bd.b.x.Apply(bd.ctx, st.state, pr, bd.epoch)
	pr.CloseWithError(io.ErrClosedPipe)
	werr := <-done
	if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return Layer{}, werr
	}
	if err != nil {
		return Layer{}, fmt.Errorf("apply %s: %w", p.req.name, err)
	}
	return l, nil
}

// emit walks every source of the plan.
func (bd *build) emit(p *copyPlan, e emitter) error {
	fetched := 0
	for _, src := range p.req.srcs {
		if p.req.add && isURL(src) {
			if err := p.emitURL(p.fetched[fetched], e); err != nil {
				return err
			}
			fetched++
			continue
		}
		if err := p.emitTree(bd, src, e); err != nil {
			return err
		}
	}
	for _, c := range p.req.contents {
		e.match("file")
		hdr := p.header(p.target(path.Base(c.Path)), tar.TypeReg, 0o644, int64(len(c.Data)), p.epoch)
		if err := e.entry(hdr, strings.NewReader(c.Data)); err != nil {
			return err
		}
	}
	return nil
}

// target is the image path a source file named base goes to.
func (p *copyPlan) target(base string) string {
	if p.dirDest {
		return path.Join(p.dest, base)
	}
	return p.dest
}

// header is a tar header for an entry at image path name with the plan's
// owner, chmod and clamped time.
func (p *copyPlan) header(name string, typ byte, mode int64, size int64, mtime time.Time) *tar.Header {
	if p.chmod != nil && typ != tar.TypeSymlink {
		mode = *p.chmod
	}
	return &tar.Header{
		Typeflag: typ,
		Name:     strings.TrimPrefix(name, "/"),
		Mode:     mode,
		Size:     size,
		Uid:      p.uid,
		Gid:      p.gid,
		ModTime:  clamp(mtime, p.epoch),
		Format:   tar.FormatPAX,
	}
}

// clamp is t in whole seconds, no later than epoch.
func clamp(t, epoch time.Time) time.Time {
	t = t.Truncate(time.Second)
	if t.After(epoch) || t.IsZero() {
		return epoch
	}
	return t.UTC()
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// emitTree emits the files a source path or wildcard of the tree names.
func (p *copyPlan) emitTree(bd *build, src string, e emitter) error {
	if c := path.Clean(src); c == ".." || strings.HasPrefix(c, "../") {
		return &categorized{err: fmt.Errorf("%s failed: forbidden path outside the build context: %s", p.req.name, src), cat: errdefs.ErrForbidden}
	}
	rel := strings.TrimPrefix(path.Clean("/"+src), "/")
	if rel == "" {
		rel = "."
	}
	if !strings.ContainsAny(rel, "*?[") {
		return p.emitExact(bd, rel, e)
	}
	return p.emitWildcard(bd, rel, e)
}

// emitExact emits the file or the directory's contents at rel.
func (p *copyPlan) emitExact(bd *build, rel string, e emitter) error {
	var root *treeEntry
	links := map[string]string{}
	err := p.tree.walk(bd.ctx, rel, func(te *treeEntry) error {
		if root == nil {
			root = te
			if te.hdr.Typeflag == tar.TypeDir {
				e.match("dir")
				return p.emitDest(e)
			}
			e.match("file")
			return p.emitEntry(bd, te, p.target(path.Base(rel)), true, links, e)
		}
		return p.emitEntry(bd, te, path.Join(p.dest, under(te.rel, rel)), false, links, e)
	})
	if errors.Is(err, errdefs.ErrNotFound) && root == nil {
		return &categorized{err: fmt.Errorf("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", p.req.name, rel), cat: errdefs.ErrNotFound}
	}
	return err
}

// emitWildcard emits every match of pattern: a file, or a directory's
// contents.
func (p *copyPlan) emitWildcard(bd *build, pattern string, e emitter) error {
	parts := strings.Split(pattern, "/")
	var fixed []string
	for _, s := range parts {
		if strings.ContainsAny(s, "*?[") {
			break
		}
		fixed = append(fixed, s)
	}
	prefix := "."
	if len(fixed) > 0 {
		prefix = strings.Join(fixed, "/")
	}
	depth := len(parts)
	matches := 0
	matchDir := ""
	links := map[string]string{}
	err := p.tree.walk(bd.ctx, prefix, func(te *treeEntry) error {
		if te.rel == prefix {
			return nil
		}
		if matchDir != "" && strings.HasPrefix(te.rel, matchDir+"/") {
			return p.emitEntry(bd, te, path.Join(p.dest, under(te.rel, matchDir)), false, links, e)
		}
		matchDir = ""
		ok, err := path.Match(pattern, te.rel)
		if err != nil {
			return invalid(fmt.Errorf("%s %s: %w", p.req.name, pattern, err))
		}
		if !ok {
			if te.hdr.Typeflag == tar.TypeDir && strings.Count(te.rel, "/")+1 >= depth {
				return fs.SkipDir
			}
			return nil
		}
		matches++
		if matches > 1 && !p.dirDest {
			return invalid(fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /", p.req.name))
		}
		if te.hdr.Typeflag == tar.TypeDir {
			matchDir = te.rel
			e.match("dir")
			return p.emitDest(e)
		}
		e.match("file")
		return p.emitEntry(bd, te, p.target(path.Base(te.rel)), true, links, e)
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return err
	}
	if matches == 0 {
		return invalid(fmt.Errorf("%s failed: no source files were specified", p.req.name))
	}
	return nil
}

// emitDest emits the destination directory a directory's contents go
// into, when the copy must make it for --chown's owner.
func (p *copyPlan) emitDest(e emitter) error {
	if !p.mkDest {
		return nil
	}
	return e.entry(p.dirHeader(p.dest), nil)
}

// dirHeader is the entry of a directory the copy makes: mode 0755 (not
// --chmod's), --chown's owner.
func (p *copyPlan) dirHeader(dir string) *tar.Header {
	h := p.header(dir+"/", tar.TypeDir, 0o755, 0, p.epoch)
	h.Mode = 0o755
	return h
}

// under is rel below dir ("a/b/c" under "a" is "b/c").
func under(rel, dir string) string {
	if dir == "." {
		return rel
	}
	return strings.TrimPrefix(rel, dir+"/")
}

// emitEntry emits one file of the tree at image path name; a top-level
// file of ADD that is a tar archive is extracted instead.
func (p *copyPlan) emitEntry(bd *build, te *treeEntry, name string, top bool, links map[string]string, e emitter) error {
	h := te.hdr
	switch h.Typeflag {
	case tar.TypeDir:
		links[te.rel] = name
		return e.entry(p.header(name, tar.TypeDir, h.Mode, 0, h.ModTime), nil)
	case tar.TypeSymlink:
		hdr := p.header(name, tar.TypeSymlink, h.Mode, 0, h.ModTime)
		hdr.Linkname = h.Linkname
		return e.entry(hdr, nil)
	case tar.TypeLink:
		target, ok := links[h.Linkname]
		if !ok {
			return fmt.Errorf("%w: %s: hard link to %s, which the copy leaves out", errdefs.ErrInvalidArgument, te.rel, h.Linkname)
		}
		hdr := p.header(name, tar.TypeLink, h.Mode, 0, h.ModTime)
		hdr.Linkname = strings.TrimPrefix(target, "/")
		return e.entry(hdr, nil)
	case tar.TypeReg:
		links[te.rel] = name
		if top && p.req.add && p.req.unpack && p.req.from == "" {
			if ok, err := p.extract(te.open, e); ok || err != nil {
				return err
			}
		}
		body, err := te.open()
		if err != nil {
			return err
		}
		defer body.Close()
		return e.entry(p.header(name, tar.TypeReg, h.Mode, h.Size, h.ModTime), &exactReader{r: body, n: h.Size, name: te.rel})
	}
	return fmt.Errorf("%w: %s: not a regular file, directory or symlink", errdefs.ErrInvalidArgument, te.rel)
}

// exactReader reads exactly n bytes of r: a file that shrank since it
// was described is an error, one that grew is cut.
type exactReader struct {
	r    io.Reader
	n    int64
	name string
}

func (x *exactReader) Read(b []byte) (int, error) {
	if x.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > x.n {
		b = b[:x.n]
	}
	n, err := x.r.Read(b)
	x.n -= int64(n)
	if err == io.EOF && x.n > 0 {
		return n, fmt.Errorf("%w: %s changed while it was copied", errdefs.ErrConflict, x.name)
	}
	if x.n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// chownIDs resolves --chown's user[:group] (names through the stage's
// /etc/passwd and /etc/group; a lone user also names the group).
func (bd *build) chownIDs(st *stage, spec string) (int, int, error) {
	parts := strings.Split(spec, ":")
	if len(parts) > 2 || parts[0] == "" {
		return 0, 0, invalid(fmt.Errorf("invalid chown string format: %s", spec))
	}
	user, group := parts[0], parts[0]
	if len(parts) == 2 {
		group = parts[1]
	}
	uid, err := bd.lookupID(st, "/etc/passwd", user)
	if err != nil {
		return 0, 0, invalid(fmt.Errorf("can't find uid for user %s: %w", user, err))
	}
	gid, err := bd.lookupID(st, "/etc/group", group)
	if err != nil {
		return 0, 0, invalid(fmt.Errorf("can't find gid for group %s: %w", group, err))
	}
	return uid, gid, nil
}

// lookupID is name's ID in a passwd or group file of the stage (a
// number is itself).
func (bd *build) lookupID(st *stage, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative ID %d", n)
		}
		return n, nil
	}
	data, err := bd.b.x.ReadFile(bd.ctx, st.state, file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Split(string(line), ":")
		if len(f) >= 3 && f[0] == name {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return 0, fmt.Errorf("%s: bad ID for %s", file, name)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no such entry in %s: %s", file, name)
}
