package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

func TestImagesArgumentFiltersByReference(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("", "images", "-a", "--filter", "dangling=false", "busy*")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	reqs := e.api.recorded("GET", "/images/json")
	if len(reqs) != 1 {
		t.Fatalf("%d list requests", len(reqs))
	}
	q := reqs[0].Query
	if q.Get("all") != "1" {
		t.Errorf("all = %q, want 1", q.Get("all"))
	}
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(q.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if !filters["reference"]["busy*"] || !filters["dangling"]["false"] {
		t.Errorf("filters = %v", filters)
	}
}

func TestImagesFormatFromConfig(t *testing.T) {
	e := newTestEnv(t)
	writeConfig(t, e, `{"imagesFormat": "{{.Repository}}"}`)
	r := e.berth("", "images")
	if r.stdout != "busybox\nlocalhost:5000/team/busybox\n<none>\n" {
		t.Errorf("got %q", r.stdout)
	}
	// --format wins over the configuration.
	if r := e.berth("", "images", "--format", "{{.Tag}}"); r.stdout != "latest\n1.36\n<none>\n" {
		t.Errorf("got %q", r.stdout)
	}
}

func TestLoginWritesConfigAndPullSendsAuth(t *testing.T) {
	e := newTestEnv(t)
	writeConfig(t, e, `{"auths":{"ghcr.io":{"auth":"eDp5"}},"psFormat":"table {{.ID}}","credHelpers":{"gcr.io":"gcloud"}}`)

	r := e.berth("secret\n", "login", "-u", "user", "--password-stdin", "localhost:5000")
	if r.code != 0 || r.stdout != "Login Succeeded\n" {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "stored unencrypted in '"+filepath.Join(e.home, ".docker", "config.json")+"'") {
		t.Errorf("no warning about plain-text credentials: %q", r.stderr)
	}
	cfg := readConfig(t, e)
	auths := cfg["auths"].(map[string]any)
	entry, _ := auths["localhost:5000"].(map[string]any)
	if entry["auth"] != base64.StdEncoding.EncodeToString([]byte("user:secret")) {
		t.Errorf("auths = %v", auths)
	}
	if auths["ghcr.io"] == nil || cfg["psFormat"] != "table {{.ID}}" || cfg["credHelpers"] == nil {
		t.Errorf("login dropped existing keys: %v", cfg)
	}
	if logins := e.api.recorded("POST", "/auth"); len(logins) != 1 {
		t.Errorf("%d /auth requests", len(logins))
	}

	// A pull from that registry carries the login; one from Docker Hub
	// carries none.
	if r := e.berth("", "pull", "-q", "localhost:5000/team/busybox:1.36"); r.code != 0 {
		t.Fatalf("pull: %d %s", r.code, r.stderr)
	}
	if r := e.berth("", "pull", "-q", "busybox"); r.code != 0 {
		t.Fatalf("pull: %d %s", r.code, r.stderr)
	}
	pulls := e.api.recorded("POST", "/images/create")
	if len(pulls) != 2 {
		t.Fatalf("%d pulls", len(pulls))
	}
	auth := decodeAuth(t, pulls[0].Auth)
	if auth.Username != "user" || auth.Password != "secret" || auth.ServerAddress != "localhost:5000" {
		t.Errorf("X-Registry-Auth = %+v", auth)
	}
	if pulls[0].Query.Get("fromImage") != "localhost:5000/team/busybox" || pulls[0].Query.Get("tag") != "1.36" {
		t.Errorf("pull query = %v", pulls[0].Query)
	}
	if pulls[1].Auth != "" {
		t.Errorf("Docker Hub pull sent credentials: %q", pulls[1].Auth)
	}

	// Push sends them too.
	if r := e.berth("", "push", "-q", "localhost:5000/team/busybox:1.36"); r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	push := e.api.recorded("POST", "/images/localhost:5000/team/busybox/push")
	if len(push) != 1 || decodeAuth(t, push[0].Auth).Password != "secret" {
		t.Errorf("push requests = %+v", push)
	}

	// Logout removes only that login.
	r = e.berth("", "logout", "localhost:5000")
	if r.code != 0 || r.stdout != "Removing login credentials for localhost:5000\n" {
		t.Errorf("logout: %d %q %q", r.code, r.stdout, r.stderr)
	}
	cfg = readConfig(t, e)
	auths = cfg["auths"].(map[string]any)
	if auths["localhost:5000"] != nil || auths["ghcr.io"] == nil || cfg["psFormat"] == nil {
		t.Errorf("after logout: %v", cfg)
	}
}

func TestLoginDockerHubKey(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("", "login", "-u", "user", "-p", "secret")
	if r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.stderr)
	}
	auths := readConfig(t, e)["auths"].(map[string]any)
	if auths["https://index.docker.io/v1/"] == nil {
		t.Errorf("Docker Hub login stored under %v", auths)
	}
	logins := e.api.recorded("POST", "/auth")
	var sent registry.AuthConfig
	json.Unmarshal([]byte(logins[0].Body), &sent)
	if sent.ServerAddress != "https://index.docker.io/v1/" {
		t.Errorf("server address sent = %q", sent.ServerAddress)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		stderr string
	}{
		{"no tty", "", []string{"login", "localhost:5000"}, "Error: Cannot perform an interactive login from a non TTY device\n"},
		{"stdin without user", "pw", []string{"login", "--password-stdin"}, "Must provide --username with --password-stdin\n"},
		{"both passwords", "pw", []string{"login", "-u", "x", "-p", "y", "--password-stdin"},
			"WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n--password and --password-stdin are mutually exclusive\n"},
		{"wrong password", "nope\n", []string{"login", "-u", "user", "--password-stdin", "localhost:5000"},
			"Error response from daemon: login attempt to https://localhost:5000/v2/ failed with status: 401 Unauthorized\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.berth(tc.stdin, tc.args...)
			if r.code != 1 || r.stderr != tc.stderr {
				t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.home, ".docker", "config.json")); err == nil {
		t.Error("a failed login wrote config.json")
	}
}

func TestPullProgressAndErrors(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("", "pull", "--platform", "linux/arm64/v8", "busybox:1.36")
	want := "latest: Pulling from library/busybox\n" +
		"90b9666d4aed: Pulling fs layer\n" +
		"90b9666d4aed: Download complete\n" +
		"90b9666d4aed: Pull complete\n" +
		"Digest: sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f\n" +
		"Status: Downloaded newer image for busybox:latest\n" +
		"docker.io/library/busybox:1.36\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout\n%s", r.code, r.stdout)
	}
	pulls := e.api.recorded("POST", "/images/create")
	if p := pulls[0].Query.Get("platform"); p != "linux/arm64/v8" {
		t.Errorf("platform sent = %q", p)
	}

	r = e.berth("", "pull", "broken:1")
	if r.code != 1 || r.stderr != "unexpected EOF\n" {
		t.Errorf("stream error: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "docker.io/library/broken") {
		t.Errorf("a failed pull printed the reference: %q", r.stdout)
	}
	r = e.berth("", "pull", "--platform", "linux//x", "busybox")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid platform") {
		t.Errorf("bad platform: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestSaveLoadImport(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()

	out := filepath.Join(dir, "images.tar")
	if r := e.berth("", "save", "-o", out, "busybox", "alpine"); r.code != 0 {
		t.Fatalf("save: %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "tar of busybox,alpine" {
		t.Errorf("saved file = %q", b)
	}
	if r := e.berth("", "save", "busybox"); r.stdout != "tar of busybox" {
		t.Errorf("save to stdout = %q", r.stdout)
	}
	if r := e.berth("", "save", "-o", filepath.Join(dir, "missing", "x.tar"), "busybox"); r.code != 1 {
		t.Errorf("save into a missing directory: exit %d", r.code)
	}

	r := e.berth("", "load", "-i", out)
	if r.code != 0 || r.stdout != "Loaded image: busybox:latest\n" {
		t.Errorf("load: %d %q %q", r.code, r.stdout, r.stderr)
	}
	loads := e.api.recorded("POST", "/images/load")
	if loads[0].Body != "tar of busybox,alpine" || loads[0].Query.Get("quiet") != "1" {
		t.Errorf("load request = %+v", loads[0])
	}
	if r := e.berth("piped archive", "load"); r.code != 0 {
		t.Errorf("load from stdin: %d %s", r.code, r.stderr)
	}
	if loads := e.api.recorded("POST", "/images/load"); loads[1].Body != "piped archive" {
		t.Errorf("stdin body = %q", loads[1].Body)
	}

	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, []byte("rootfs bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.berth("", "import", "-c", "ENV A=1", "-c", "CMD [\"sh\"]", "-m", "from a tar", rootfs, "example/app:v1")
	if r.code != 0 || r.stdout != "sha256:1111111111111111111111111111111111111111111111111111111111111111\n" {
		t.Errorf("import: %d %q %q", r.code, r.stdout, r.stderr)
	}
	imp := e.api.recorded("POST", "/images/create")[0]
	q := imp.Query
	if imp.Body != "rootfs bytes" || q.Get("fromSrc") != "-" || q.Get("repo") != "example/app:v1" ||
		q.Get("message") != "from a tar" || strings.Join(q["changes"], "|") != `ENV A=1|CMD ["sh"]` {
		t.Errorf("import request = %+v", imp)
	}
	if r := e.berth("stdin rootfs", "import", "-"); r.code != 0 {
		t.Errorf("import -: %d %s", r.code, r.stderr)
	}
	if imp := e.api.recorded("POST", "/images/create")[1]; imp.Body != "stdin rootfs" {
		t.Errorf("import - body = %q", imp.Body)
	}
	if r := e.berth("", "import", filepath.Join(dir, "nope.tar")); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("import of a missing file: %d %q", r.code, r.stderr)
	}
}

func TestPrunePrompt(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("n\n", "image", "prune")
	if r.code != 0 || r.stdout != "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] " {
		t.Errorf("declined: %d %q", r.code, r.stdout)
	}
	if n := len(e.api.recorded("POST", "/images/prune")); n != 0 {
		t.Fatalf("declined prune sent %d requests", n)
	}
	r = e.berth("y\n", "image", "prune", "-a")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "WARNING! This will remove all images without at least one container associated to them.\n") ||
		!strings.HasSuffix(r.stdout, "Total reclaimed space: 120B\n") {
		t.Errorf("accepted: %d %q", r.code, r.stdout)
	}
	prunes := e.api.recorded("POST", "/images/prune")
	if len(prunes) != 1 || !strings.Contains(prunes[0].Query.Get("filters"), `"dangling":{"false":true}`) {
		t.Errorf("prune requests = %+v", prunes)
	}
}

func TestVersionAndInfo(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("", "version")
	for _, want := range []string{"Client:\n Version:           1.2.3\n", " Git commit:        abcdef0\n", "Server: berth\n Engine:\n  Version:          0.1.0\n", "  API version:      1.50 (minimum version 1.24)\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := e.berth("", "version", "--format", "{{.Client.Version}} {{.Server.Version}}"); r.stdout != "1.2.3 0.1.0\n" {
		t.Errorf("version --format = %q", r.stdout)
	}
	r = e.berth("", "info")
	if r.code != 0 || !strings.Contains(r.stdout, " Server Version: 0.1.0\n") || r.stderr != "WARNING: this is a fake\n" {
		t.Errorf("info: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.berth("", "info", "--format", "{{.ID}} {{.NCPU}} {{.ClientInfo.Version}}"); r.stdout != "fake-id 2 1.2.3\n" {
		t.Errorf("info --format = %q (%s)", r.stdout, r.stderr)
	}
	if r := e.berth("", "-v"); r.stdout != "berth version 1.2.3, build abcdef0\n" {
		t.Errorf("-v = %q", r.stdout)
	}
}

func TestSystemDiskUsageVerbose(t *testing.T) {
	e := newTestEnv(t)
	r := e.berth("", "system", "df", "-v")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"Images space usage:\n\nREPOSITORY                    TAG       IMAGE ID       CREATED       SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n",
		"busybox                       latest    6d3e4188a38a   2 weeks ago   4.26MB    0B            4.26MB        0\n",
		"\nContainers space usage:\n\nCONTAINER ID",
		"\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n",
		"\nBuild cache usage: 0B\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("df -v lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestGlobalFlags(t *testing.T) {
	e := newTestEnv(t)
	// -H names the daemon; BERTH_HOST then does not matter.
	host := e.env["BERTH_HOST"]
	e.env["BERTH_HOST"] = "unix:///nonexistent/berth.sock"
	if r := e.berth("", "-H", host, "images", "-q"); r.code != 0 {
		t.Errorf("-H: %d %s", r.code, r.stderr)
	}
	// --config moves config.json.
	dir := t.TempDir()
	e.env["BERTH_HOST"] = host
	if r := e.berth("", "--config", dir, "login", "-u", "user", "-p", "secret"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Errorf("--config: %v", err)
	}
	// history's own -H is not the global one.
	if r := e.berth("", "history", "-H=false", "-q", "busybox"); r.code != 0 {
		t.Errorf("history -H=false: %d %s", r.code, r.stderr)
	}
}

func writeConfig(t *testing.T, e *testEnv, data string) {
	t.Helper()
	dir := filepath.Join(e.home, ".docker")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readConfig(t *testing.T, e *testEnv) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.home, ".docker", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeAuth(t *testing.T, header string) registry.AuthConfig {
	t.Helper()
	b, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q: %v", header, err)
	}
	var a registry.AuthConfig
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}
