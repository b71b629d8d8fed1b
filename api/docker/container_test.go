package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"berth.dev/api/docker/backend"
)

// mobyClient is moby's Go client on the test server's socket, negotiating
// the API version as the berth CLI does.
func mobyClient(t *testing.T, cs *containerServer) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://"+cs.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tarNames lists the entries of a tar archive as name=content.
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name+"="+string(b))
	}
}

// TestContainerLifecycleSDK drives create, start, stop, wait and remove
// with moby's client, the way the berth CLI and compose do.
func TestContainerLifecycleSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()

	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "web", Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "1000"}}})
	if err != nil || created.ID == "" || created.Warnings == nil {
		t.Fatalf("create %+v %v", created, err)
	}
	if call := cs.c.last(t); call.Method != "Create" || call.Args[0] != "web" || call.Args[1].(container.CreateRequest).Cmd[0] != "sleep" {
		t.Errorf("create call %+v", call)
	}
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "nosuch"}}); !cerrdefs.IsNotFound(err) {
		t.Errorf("create from an unknown image: %v, want not found", err)
	}
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "taken", Config: &container.Config{Image: "busybox"}}); !cerrdefs.IsConflict(err) {
		t.Errorf("create with a name in use: %v, want conflict", err)
	}
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "a b", Config: &container.Config{Image: "busybox"}}); !cerrdefs.IsInvalidArgument(err) ||
		!strings.Contains(err.Error(), "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed") {
		t.Errorf("create with a bad name: %v", err)
	}

	// wait registers before start, as docker run does; the answer's
	// headers come back at once, the result when the container stops.
	wait := c.ContainerWait(ctx, "web", client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.ContainerStart(ctx, "web", client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := c.ContainerStart(ctx, "web", client.ContainerStartOptions{}); err != nil {
		t.Errorf("second start (304): %v", err)
	}
	timeout := 5
	if _, err := c.ContainerStop(ctx, "web", client.ContainerStopOptions{Timeout: &timeout, Signal: "SIGUSR1"}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 137 {
			t.Errorf("wait status %d, want 137", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatalf("wait: %v", err)
	}
	if call := cs.c.Calls()[len(cs.c.Calls())-1]; call.Method != "Stop" || !reflect.DeepEqual(call.Args[1], backend.StopOptions{Signal: "SIGUSR1", Timeout: &timeout}) {
		t.Errorf("stop call %+v", call)
	}
	if _, err := c.ContainerStop(ctx, "web", client.ContainerStopOptions{}); err != nil {
		t.Errorf("second stop (304): %v", err)
	}
	wait = c.ContainerWait(ctx, "nosuch", client.ContainerWaitOptions{})
	if err := <-wait.Error; !cerrdefs.IsNotFound(err) {
		t.Errorf("wait for an unknown container: %v", err)
	}

	insp, err := c.ContainerInspect(ctx, "web", client.ContainerInspectOptions{Size: true})
	if err != nil || insp.Container.ID != created.ID {
		t.Errorf("inspect %+v %v", insp, err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Inspect", "web", true)) {
		t.Errorf("inspect call %+v", call)
	}
	if _, err := c.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of an unknown container: %v", err)
	}

	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Limit: 3, Filters: make(client.Filters).Add("status", "running").Add("label", "a=b")})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != fakeContainerID {
		t.Errorf("list %+v %v", list, err)
	}
	wantList := backend.ContainerListOptions{All: true, Limit: 3, Filters: backend.ContainerFilters{"status": {"running"}, "label": {"a=b"}}}
	if call := cs.c.last(t); !reflect.DeepEqual(call.Args[0], wantList) {
		t.Errorf("list call %+v, want %+v", call.Args[0], wantList)
	}
	if _, err := c.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("nope", "x")}); !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid filter 'nope'") {
		t.Errorf("list with an unknown filter: %v", err)
	}

	if _, err := c.ContainerRestart(ctx, "web", client.ContainerRestartOptions{}); err != nil {
		t.Errorf("restart: %v", err)
	}
	if _, err := c.ContainerKill(ctx, "web", client.ContainerKillOptions{Signal: "HUP"}); err != nil {
		t.Errorf("kill: %v", err)
	}
	if _, err := c.ContainerKill(ctx, "web", client.ContainerKillOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("kill of a stopped container: %v, want conflict", err)
	}
	if _, err := c.ContainerPause(ctx, "web", client.ContainerPauseOptions{}); err != nil {
		t.Errorf("pause: %v", err)
	}
	if _, err := c.ContainerUnpause(ctx, "web", client.ContainerUnpauseOptions{}); err != nil {
		t.Errorf("unpause: %v", err)
	}
	if _, err := c.ContainerRename(ctx, "web", client.ContainerRenameOptions{NewName: "web2"}); err != nil {
		t.Errorf("rename: %v", err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Rename", "web", "web2")) {
		t.Errorf("rename call %+v", call)
	}
	up, err := c.ContainerUpdate(ctx, "web", client.ContainerUpdateOptions{Resources: &container.Resources{Memory: 1 << 20}})
	if err != nil || up.Warnings == nil {
		t.Errorf("update %+v %v", up, err)
	}
	if cfg := cs.c.last(t).Args[1].(container.UpdateConfig); cfg.Memory != 1<<20 {
		t.Errorf("update config %+v", cfg)
	}
	if _, err := c.ContainerResize(ctx, "t1", client.ContainerResizeOptions{Height: 40, Width: 120}); err != nil {
		t.Errorf("resize: %v", err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Resize", "t1", uint(40), uint(120))) {
		t.Errorf("resize call %+v", call)
	}
	top, err := c.ContainerTop(ctx, "web", client.ContainerTopOptions{Arguments: []string{"aux"}})
	if err != nil || len(top.Processes) != 1 || top.Titles[0] != "PID" {
		t.Errorf("top %+v %v", top, err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Top", "web", "aux")) {
		t.Errorf("top call %+v", call)
	}
	diff, err := c.ContainerDiff(ctx, "web", client.ContainerDiffOptions{})
	if err != nil || len(diff.Changes) != 2 || diff.Changes[1].Path != "/tmp/x" {
		t.Errorf("diff %+v %v", diff, err)
	}

	if _, err := c.ContainerRemove(ctx, "c1", client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		t.Errorf("remove: %v", err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Remove", "c1", backend.ContainerRemoveOptions{Force: true, RemoveVolumes: true})) {
		t.Errorf("remove call %+v", call)
	}
	if _, err := c.ContainerRemove(ctx, "nosuch", client.ContainerRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("remove of an unknown container: %v", err)
	}
	pr, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: make(client.Filters).Add("until", "10m")})
	if err != nil || pr.Report.SpaceReclaimed != 2048 || len(pr.Report.ContainersDeleted) != 1 {
		t.Errorf("prune %+v %v", pr, err)
	}
	if _, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: make(client.Filters).Add("status", "exited")}); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("prune with a list-only filter: %v", err)
	}
}

// call2 builds the call a fake records.
func call2(method string, args ...any) call { return call{method, args} }

// TestContainerFilesSDK covers the archive, export, commit and stats routes
// with moby's client.
func TestContainerFilesSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()

	st, err := c.ContainerStatPath(ctx, "c1", client.ContainerStatPathOptions{Path: "/etc"})
	if err != nil || !reflect.DeepEqual(st.Stat, fakeEtc) {
		t.Errorf("stat %+v %v, want %+v", st.Stat, err, fakeEtc)
	}
	if _, err := c.ContainerStatPath(ctx, "c1", client.ContainerStatPathOptions{Path: "/nope"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("stat of a missing path: %v", err)
	}
	from, err := c.CopyFromContainer(ctx, "c1", client.CopyFromContainerOptions{SourcePath: "/etc"})
	if err != nil {
		t.Fatalf("copy from: %v", err)
	}
	if got := tarNames(t, from.Content); !reflect.DeepEqual(got, []string{"etc/hostname=berth-test\n"}) || from.Stat.Name != "etc" {
		t.Errorf("copy from: %q %+v", got, from.Stat)
	}
	from.Content.Close()
	if _, err := c.CopyFromContainer(ctx, "c1", client.CopyFromContainerOptions{SourcePath: "/nope"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("copy of a missing path: %v", err)
	}
	if _, err := c.CopyToContainer(ctx, "c1", client.CopyToContainerOptions{DestinationPath: "/tmp", Content: bytes.NewReader(fakeTar("a.txt", "A")), CopyUIDGID: true}); err != nil {
		t.Fatalf("copy to: %v", err)
	}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("ExtractToPath", "c1", "/tmp", backend.ArchiveOptions{NoOverwriteDirNonDir: true, CopyUIDGID: true})) {
		t.Errorf("extract call %+v", call)
	}
	if !reflect.DeepEqual(cs.c.extracted, []string{"a.txt=A"}) {
		t.Errorf("extracted %q", cs.c.extracted)
	}

	exp, err := c.ContainerExport(ctx, "c1", client.ContainerExportOptions{})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if got := tarNames(t, exp); !reflect.DeepEqual(got, []string{"bin/sh=#!", "etc/hostname=c1\n"}) {
		t.Errorf("export %q", got)
	}
	exp.Close()
	if _, err := c.ContainerExport(ctx, "nosuch", client.ContainerExportOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("export of an unknown container: %v", err)
	}

	com, err := c.ContainerCommit(ctx, "c1", client.ContainerCommitOptions{Reference: "myimg:v1", Comment: "hi", Author: "me", Changes: []string{"ENV A=1"}, NoPause: true,
		Config: &container.Config{Cmd: []string{"true"}}})
	if err != nil || com.ID != fakeImageID {
		t.Fatalf("commit %+v %v", com, err)
	}
	wantCommit := backend.CommitOptions{Ref: "docker.io/library/myimg:v1", Comment: "hi", Author: "me", Changes: []string{"ENV A=1"}, Config: &container.Config{Cmd: []string{"true"}}}
	if call := cs.c.last(t); !reflect.DeepEqual(call, call2("Commit", "c1", wantCommit)) {
		t.Errorf("commit call %+v, want %+v", call, wantCommit)
	}

	one, err := c.ContainerStats(ctx, "c1", client.ContainerStatsOptions{Stream: false})
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	b, _ := io.ReadAll(one.Body)
	one.Body.Close()
	var sr container.StatsResponse
	if err := json.Unmarshal(b, &sr); err != nil || sr.MemoryStats.Usage != 1000 || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("one-shot stats %s %v", b, err)
	}
	stream, err := c.ContainerStats(ctx, "c1", client.ContainerStatsOptions{Stream: true})
	if err != nil {
		t.Fatalf("stats stream: %v", err)
	}
	dec := json.NewDecoder(stream.Body)
	var usages []uint64
	for dec.More() {
		if err := dec.Decode(&sr); err != nil {
			t.Fatalf("stats stream: %v", err)
		}
		usages = append(usages, sr.MemoryStats.Usage)
	}
	stream.Body.Close()
	if !reflect.DeepEqual(usages, []uint64{1000, 2000, 3000}) {
		t.Errorf("streamed usages %v", usages)
	}
}

// TestContainerLogsSDK reads logs with moby's client: multiplexed without a
// terminal, raw with one, timestamps, and follow.
func TestContainerLogsSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()

	logs, err := c.ContainerLogs(ctx, "c1", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Tail: "5", Since: "1700000000"})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatalf("demultiplex the logs: %v", err)
	}
	logs.Close()
	if stdout.String() != "2025-01-02T03:04:05.600000000Z hello out\n" || stderr.String() != "2025-01-02T03:04:06.600000000Z hello err\n" {
		t.Errorf("logs: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	opts := cs.c.last(t).Args[1].(backend.LogsOptions)
	if !opts.Stdout || !opts.Stderr || opts.Tail != 5 || opts.Since.Unix() != 1700000000 || !opts.Until.IsZero() || opts.Follow {
		t.Errorf("logs options %+v", opts)
	}

	logs, err = c.ContainerLogs(ctx, "t1", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(logs)
	logs.Close()
	if string(raw) != "hello out\nhello err\n" {
		t.Errorf("tty logs %q", raw)
	}

	if _, err := c.ContainerLogs(ctx, "nosuch", client.ContainerLogsOptions{ShowStdout: true}); !cerrdefs.IsNotFound(err) {
		t.Errorf("logs of an unknown container: %v", err)
	}

	// follow: the headers come before any new entry, entries as they come.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logs, err = c.ContainerLogs(fctx, "c1", client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	first := make([]byte, 8+len("hello out\n"))
	if _, err := io.ReadFull(logs, first); err != nil || string(first[8:]) != "hello out\n" || first[0] != 1 {
		t.Fatalf("first followed frame %q %v", first, err)
	}
	cs.c.followed <- backend.LogMessage{Stream: "stderr", Line: []byte("later\n")}
	next := make([]byte, 8+len("later\n"))
	if _, err := io.ReadFull(logs, next); err != nil || string(next[8:]) != "later\n" || next[0] != 2 {
		t.Fatalf("followed frame %q %v", next, err)
	}
	close(cs.c.followed)
	if rest, err := io.ReadAll(logs); err != nil || len(rest) != 0 {
		t.Errorf("after the end of the log: %q %v", rest, err)
	}
}

// TestContainerErrors checks dockerd's status codes and messages for bad
// requests, and that 204 and 304 answers have no body.
func TestContainerErrors(t *testing.T) {
	cs := newContainerServer(t)
	if _, err := cs.c.Start(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	q := func(s string) string {
		return strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", "[", "%5B", "]", "%5D").Replace(s)
	}
	tests := []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", "/containers/create?name=a%20b", `{"Image":"busybox"}`, 400, "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{"POST", "/containers/create?name=/ok", `{"Image":"busybox"}`, 201, ""},
		{"POST", "/containers/create?name=x", `{"Image":"busybox"}`, 400, "Invalid container name (x)"},
		{"POST", "/containers/create", ``, 400, "invalid JSON: got EOF while reading request body"},
		{"POST", "/containers/create", `{`, 400, "invalid JSON"},
		{"POST", "/containers/create", `{}`, 400, "config cannot be empty in order to create a container"},
		{"POST", "/containers/create?platform=linux/s390x", `{"Image":"busybox"}`, 400, `invalid platform "linux/s390x"`},
		{"POST", "/containers/create?platform=windows", `{"Image":"busybox"}`, 400, `invalid platform "windows"`},
		{"POST", "/containers/create?platform=linux", `{"Image":"busybox"}`, 201, ""},
		{"GET", "/containers/json?filters=" + q(`{"nope":["x"]}`), "", 400, "invalid filter 'nope'"},
		{"GET", "/containers/json?filters=" + q(`{"status":["bogus"]}`), "", 400, "invalid filter 'status=bogus'"},
		{"GET", "/containers/json?filters=" + q(`{"health":["bogus"]}`), "", 400, "Unrecognised filter value for health: bogus"},
		{"GET", "/containers/json?filters=" + q(`{"exited":["x"]}`), "", 400, "invalid filter 'exited=x'"},
		{"GET", "/containers/json?filters=" + q(`{"exited":["0"],"status":["exited"]}`), "", 200, ""},
		{"GET", "/containers/json?filters=" + q(`{"is-task":["true"]}`), "", 200, "[]"},
		{"GET", "/containers/json?limit=x", "", 400, "invalid value for limit"},
		{"POST", "/containers/prune?filters=" + q(`{"until":["bogus"]}`), "", 400, `invalid timestamp "bogus"`},
		{"GET", "/containers/nosuch/json", "", 404, "No such container: nosuch"},
		{"GET", "/containers/c1/logs", "", 400, "Bad parameters: you must choose at least one stream"},
		{"GET", "/containers/c1/logs?stdout=1&since=bogus", "", 400, `invalid timestamp "bogus"`},
		{"GET", "/containers/nosuch/logs?stdout=1", "", 404, "No such container: nosuch"},
		{"POST", "/containers/c1/wait?condition=bogus", "", 400, `invalid condition: "bogus"`},
		{"POST", "/v1.29/containers/nosuch/wait?condition=bogus", "", 404, "No such container: nosuch"},
		{"POST", "/v1.40/containers/create?platform=windows", `{"Image":"busybox"}`, 201, ""},
		{"HEAD", "/containers/c1/archive", "", 400, ""},
		{"GET", "/containers/c1/archive", "", 400, "bad parameter: path cannot be empty"},
		{"PUT", "/containers/c1/archive", "", 400, "bad parameter: path cannot be empty"},
		{"PUT", "/containers/c1/archive?path=/tmp", "not a tar", 400, "read archive"},
		{"POST", "/containers/c1/rename", "", 400, "Neither old nor new names may be empty"},
		{"POST", "/containers/c1/resize?h=x&w=1", "", 400, "invalid terminal size"},
		{"POST", "/containers/c1/resize?h=1&w=1", "", 409, "has no terminal"},
		{"POST", "/containers/c1/stop?t=x", "", 400, "invalid value for t"},
		{"POST", "/containers/c1/start", `{"Binds":["/a:/b"]}`, 400, "starting container with non-empty request body was deprecated"},
		{"POST", "/containers/c1/start", "{}", 304, ""},
		{"POST", "/containers/c1/start", "", 304, ""},
		{"POST", "/containers/c1/stop", "", 204, ""},
		{"POST", "/containers/c1/stop", "", 304, ""},
		{"POST", "/containers/c1/kill", "", 409, "Cannot kill container: c1: Container " + fakeContainerID + " is not running"},
		{"POST", "/containers/c1/update", "", 400, "invalid JSON"},
		{"DELETE", "/containers/c1?link=1", "", 501, "links"},
		{"DELETE", "/containers/c1", "", 204, ""},
		{"POST", "/containers/c1/exec", `{}`, 400, "No exec command specified"},
		{"POST", "/containers/c1/exec", `{"Cmd":["ls"]}`, 409, "is not running"},
		{"POST", "/containers/nosuch/exec", `{"Cmd":["ls"]}`, 404, "No such container: nosuch"},
		{"POST", "/exec/nosuch/start", `{"Detach":true}`, 404, "No such exec instance: nosuch"},
		{"GET", "/exec/nosuch/json", ``, 404, "No such exec instance: nosuch"},
		{"POST", "/exec/nosuch/resize?h=1&w=2", ``, 404, "No such exec instance: nosuch"},
		{"POST", "/commit?container=c1&repo=x&tag=sha256:" + strings.Repeat("a", 64), "", 400, "a digest is not a name"},
		{"POST", "/commit?container=c1&repo=UPPER", "", 400, "invalid reference format"},
		{"POST", "/commit?container=nosuch", "", 404, "No such container: nosuch"},
		{"POST", "/containers/nosuch/attach?stream=1&stdout=1", "", 404, "No such container: nosuch"},
		{"GET", "/v1.41/containers/c1/top", "", 200, "sleep 1000"},
		{"GET", "/containers/c1/attach/ws", "", 501, "websocket"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, tt.method, cs.URL+tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var msg struct{ Message string }
			if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
				msg.Message = string(body)
			}
			if !strings.Contains(msg.Message, tt.message) {
				t.Errorf("body %s lacks %q", body, tt.message)
			}
			if (tt.status == 204 || tt.status == 304) && len(body) != 0 {
				t.Errorf("a %d answer with a body: %q", tt.status, body)
			}
		})
	}
}

// TestRoutesWithoutBackends checks that the container and volume routes
// answer 501 when berthd has no such backend.
func TestRoutesWithoutBackends(t *testing.T) {
	url := httptestServer(t, NewServer(Backends{System: &fakeSystem{}}).Handler())
	for _, p := range []string{"/containers/json", "/volumes", "/exec/x/json"} {
		resp, body := do(t, http.MethodGet, url+p, nil)
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "not available") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

// TestArchiveHeaders checks the path stat header of HEAD and GET
// .../archive, decoded as the docker CLI does.
func TestArchiveHeaders(t *testing.T) {
	cs := newContainerServer(t)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		resp, body := do(t, method, cs.URL+"/containers/c1/archive?path=/etc", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %s", method, resp.StatusCode, body)
		}
		raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
		var st container.PathStat
		if err == nil {
			err = json.Unmarshal(raw, &st)
		}
		if err != nil || st.Name != "etc" || !st.Mode.IsDir() || st.Mode.Perm() != 0o755 {
			t.Errorf("%s: stat %s %+v %v", method, raw, st, err)
		}
		if method == http.MethodHead && len(body) != 0 {
			t.Errorf("HEAD with a body %q", body)
		}
		if method == http.MethodGet && (resp.Header.Get("Content-Type") != "application/x-tar" || !bytes.Contains(body, []byte("berth-test"))) {
			t.Errorf("GET: %s %q", resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestDockerCLIContainers runs the real docker CLI's container, exec and
// volume commands against the server with fake backends.
func TestDockerCLIContainers(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed")
	}
	cs := newContainerServer(t)
	dir := t.TempDir()
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(dockerBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(),
			"DOCKER_HOST=unix://"+cs.sock,
			"DOCKER_CONFIG="+filepath.Join(dir, "config"),
			"DOCKER_CONTEXT=", "DOCKER_API_VERSION=", "DOCKER_CLI_HINTS=false",
		)
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exitErr):
			return string(out), exitErr.ExitCode()
		default:
			t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
			return "", -1
		}
	}
	close(cs.c.followed)
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("copied in"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		stdin string
		args  []string
		code  int
		want  []string // substrings of the output
	}{
		{"", []string{"create", "--name", "web", "busybox", "sleep", "1000"}, 0, []string{strings.Repeat("ab", 32)}},
		{"", []string{"create", "--name", "a b", "busybox"}, 1, []string{"Invalid container name (a b)"}},
		{"", []string{"start", "web"}, 0, []string{"web"}},
		{"", []string{"ps", "-a", "--no-trunc", "--filter", "status=running"}, 0, []string{fakeContainerID, "Up 2 minutes", "c1"}},
		{"", []string{"ps", "--filter", "bogus=1"}, 1, []string{"invalid filter 'bogus'"}},
		{"", []string{"logs", "-t", "c1"}, 0, []string{"2025-01-02T03:04:05.600000000Z hello out", "2025-01-02T03:04:06.600000000Z hello err"}},
		{"", []string{"logs", "--tail", "1", "t1"}, 0, []string{"hello out\nhello err\n"}},
		{"", []string{"logs", "nosuch"}, 1, []string{"No such container: nosuch"}},
		{"", []string{"logs", "-f", "c1"}, 0, []string{"hello out\n", "hello err\n"}}, // the fake's follow ends at once
		{"", []string{"create", "-i", "--name", "att", "busybox", "cat"}, 0, nil},
		{"", []string{"start", "att"}, 0, []string{"att"}},
		{"attached\n", []string{"attach", "att"}, 3, []string{"out:ATTACHED", "err:ATTACHED"}},
		{"hello run\n", []string{"run", "-i", "--name", "r1", "busybox", "cat"}, 3, []string{"out:HELLO RUN", "err:HELLO RUN"}},
		{"", []string{"start", "c1"}, 0, []string{"c1"}},
		{"piped exec", []string{"exec", "-i", "c1", "cat"}, 0, []string{"out:PIPED EXEC", "err:PIPED EXEC"}},
		{"", []string{"exec", "c1", "echo", "hi"}, 0, []string{"ran:echo hi"}},
		{"", []string{"exec", "-d", "c1", "touch", "/x"}, 0, nil},
		{"", []string{"top", "c1"}, 0, []string{"sleep 1000"}},
		{"", []string{"diff", "c1"}, 0, []string{"C /tmp", "A /tmp/x"}},
		{"", []string{"cp", "c1:/etc", filepath.Join(dir, "out")}, 0, nil},
		{"", []string{"cp", filepath.Join(dir, "in.txt"), "c1:/etc"}, 0, nil},
		{"", []string{"cp", "c1:/nope", dir}, 1, []string{"Could not find the file /nope in container c1"}},
		{"", []string{"export", "-o", filepath.Join(dir, "export.tar"), "c1"}, 0, nil},
		{"", []string{"commit", "-m", "msg", "-c", "ENV A=1", "c1", "myimg:v1"}, 0, []string{fakeImageID}},
		{"", []string{"pause", "c1"}, 0, []string{"c1"}},
		{"", []string{"unpause", "c1"}, 0, []string{"c1"}},
		{"", []string{"rename", "c1", "c2"}, 0, nil},
		{"", []string{"update", "--memory", "64m", "c1"}, 0, []string{"c1"}},
		{"", []string{"container", "inspect", "--format", "{{.Config.Tty}} {{.State.Running}}", "t1"}, 0, []string{"true false"}},
		{"", []string{"stop", "c1"}, 0, []string{"c1"}},
		{"", []string{"wait", "c1"}, 0, []string{"137"}},
		{"", []string{"rm", "-f", "c1"}, 0, []string{"c1"}},
		{"", []string{"container", "prune", "-f"}, 0, []string{fakeContainerID, "Total reclaimed space: 2.048kB"}},
		{"", []string{"volume", "create", "--label", "a=b", "data"}, 0, []string{"data"}},
		{"", []string{"volume", "ls"}, 0, []string{"local     busy", "local     data"}},
		{"", []string{"volume", "inspect", "data"}, 0, []string{`"Mountpoint": "/var/lib/berth/volumes/data/_data"`}},
		{"", []string{"volume", "rm", "busy"}, 1, []string{"volume is in use"}},
		{"", []string{"volume", "rm", "data"}, 0, []string{"data"}},
		{"", []string{"volume", "prune", "-f"}, 0, []string{"old", "Total reclaimed space: 1.024kB"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := run(tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("files", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, "out", "hostname"))
		if err != nil || string(b) != "berth-test\n" {
			t.Errorf("docker cp from the container: %q %v", b, err)
		}
		if !slices.Contains(cs.c.extracted, "in.txt=copied in") {
			t.Errorf("docker cp into the container extracted %q", cs.c.extracted)
		}
		f, err := os.Open(filepath.Join(dir, "export.tar"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got := tarNames(t, f); len(got) != 2 {
			t.Errorf("exported %q", got)
		}
	})

	t.Run("backend arguments", func(t *testing.T) {
		want := []call{
			call2("Commit", "c1", backend.CommitOptions{Ref: "docker.io/library/myimg:v1", Comment: "msg", Changes: []string{"ENV A=1"}, Pause: true}),
			call2("Rename", "c1", "c2"),
		}
		for _, w := range want {
			if !slices.ContainsFunc(cs.c.Calls(), func(c call) bool { return reflect.DeepEqual(c, w) }) {
				t.Errorf("no call %+v", w)
			}
		}
	})
}

// TestContainerParameterRules checks parameters dockerd reads only from
// some API versions on, or normalizes before the engine sees them.
func TestContainerParameterRules(t *testing.T) {
	cs := newContainerServer(t)
	five := 5
	zero := int64(0)
	tests := []struct {
		method, path, body string
		want               call
	}{
		{"POST", "/v1.41/containers/c1/stop?signal=SIGUSR1&t=5", "", call2("Stop", "c1", backend.StopOptions{Timeout: &five})},
		{"POST", "/v1.42/containers/c1/restart?signal=SIGUSR1", "", call2("Restart", "c1", backend.StopOptions{Signal: "SIGUSR1"})},
		{"POST", "/containers/c1/update", `{"PidsLimit":-1}`, call2("Update", "c1", container.UpdateConfig{Resources: container.Resources{PidsLimit: &zero}})},
		{"POST", "/containers/c1/update", `{"PidsLimit":0}`, call2("Update", "c1", container.UpdateConfig{Resources: container.Resources{PidsLimit: &zero}})},
		{"GET", "/containers/json?limit=-1&all=1&size=true", "", call2("List", backend.ContainerListOptions{All: true, Size: true, Filters: backend.ContainerFilters{}})},
		{"GET", "/containers/json?filters=" + url.QueryEscape(`{"is-task":["false"],"name":["x"]}`), "", call2("List", backend.ContainerListOptions{Filters: backend.ContainerFilters{"name": {"x"}}})},
		{"POST", "/commit?container=c1&pause=0", "", call2("Commit", "c1", backend.CommitOptions{})},
		{"POST", "/commit?container=c1&repo=reg.example:5000/team/app", "", call2("Commit", "c1", backend.CommitOptions{Ref: "reg.example:5000/team/app:latest", Pause: true})},
		{"POST", "/containers/prune?filters=" + url.QueryEscape(`{"label!":["keep"],"until":["1h"]}`), "", call2("Prune", backend.ContainerFilters{"label!": {"keep"}, "until": {"1h"}})},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, tt.method, cs.URL+tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			if resp.StatusCode >= 400 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := cs.c.last(t); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("call %+v, want %+v", got, tt.want)
			}
		})
	}
}
