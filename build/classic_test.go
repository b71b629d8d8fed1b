package build

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// TestClassicReference builds testdata/classic/Dockerfile and compares the
// history and config with what docker 20.10's classic builder made of it
// (see testdata/classic/README).
func TestClassicReference(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("testdata", "classic", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": string(df), "busybox": "#!fake busybox", "f.txt": "hello\n", "g.txt": "g\n"})
	x := fakeFS{newFake(t)}
	x.run = func(r RunSpec, _ map[string]fakeFile) (map[string]fakeFile, error) {
		if strings.HasSuffix(r.Args[len(r.Args)-1], "> /x") {
			return map[string]fakeFile{"x": {Typ: tar.TypeReg, Mode: 0o644, Data: "b\n"}}, nil
		}
		return nil, nil
	}
	s, _, _ := mustBuild(t, x, dir, Options{})

	want, err := os.ReadFile(filepath.Join("testdata", "classic", "history.txt"))
	if err != nil {
		t.Fatal(err)
	}
	hash := regexp.MustCompile(`(file|dir|multi):[0-9a-f]{64}`)
	var got strings.Builder
	for _, h := range s.Config.History {
		kind := "layer "
		if h.EmptyLayer {
			kind = "empty "
		}
		got.WriteString(kind + hash.ReplaceAllString(h.CreatedBy, "$1:<hash>") + "\n")
	}
	if got.String() != string(want) {
		t.Errorf("history:\n%s\ndocker's:\n%s", got.String(), want)
	}
	if s.Config.Author != "Jane <jane@example.com>" || s.Config.History[1].Author != s.Config.Author {
		t.Errorf("author %q", s.Config.Author)
	}

	data, err := os.ReadFile(filepath.Join("testdata", "classic", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref dockerspec.DockerOCIImageConfig
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := json.Marshal(ref)
	gotCfg, _ := json.Marshal(s.Config.Config)
	if string(gotCfg) != string(wantCfg) {
		t.Errorf("config:\n%s\ndocker's:\n%s", gotCfg, wantCfg)
	}
}
