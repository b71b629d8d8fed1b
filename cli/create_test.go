package cli

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// createBody runs create through run (docker or berth) on a fresh fake
// and returns the create request's body as generic JSON and the query.
func createBody(t *testing.T, useDocker bool, args []string) (map[string]any, string, result) {
	t.Helper()
	e, _ := newContainerTestEnv(t)
	var res result
	if useDocker {
		res = e.docker(args...)
	} else {
		res = e.berth("", args...)
	}
	reqs := e.api.recorded("POST", "/containers/create")
	if len(reqs) == 0 {
		return nil, "", res
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(reqs[len(reqs)-1].Body), &body); err != nil {
		t.Fatalf("create body: %v", err)
	}
	return body, reqs[len(reqs)-1].Query.Encode(), res
}

// TestCreateRequestSameAsDocker sends the same flags through docker's CLI
// and berth's to the fake and expects the same create request.
func TestCreateRequestSameAsDocker(t *testing.T) {
	t.Setenv("BERTH_TEST_FROM_ENV", "from-env")
	for _, args := range [][]string{
		{"create", "busybox"},
		{"create", "--name", "x", "-it", "busybox", "sh", "-c", "echo hi"},
		{"create", "-i", "-a", "stdout", "busybox"},
		{"create", "-e", "A=1", "-e", "BERTH_TEST_FROM_ENV", "-e", "BERTH_TEST_UNSET", "--env-file", "testdata/run.env", "busybox"},
		{"create", "-l", "a=b", "-l", "flag", "--label-file", "testdata/labels", "busybox"},
		{"create", "-w", "/srv", "-u", "1000:1000", "--hostname", "h1", "--domainname", "example.org", "busybox"},
		{"create", "--entrypoint", "/bin/echo", "busybox", "hi"},
		{"create", "--entrypoint", "", "busybox"},
		{"create", "-m", "512m", "--memory-swap", "1g", "--memory-reservation", "256m", "busybox"},
		{"create", "--memory-swap", "-1", "-m", "1g", "busybox"},
		{"create", "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "busybox"},
		{"create", "--cpu-period", "100000", "--cpu-quota", "50000", "busybox"},
		{"create", "--pids-limit", "100", "--blkio-weight", "300", "busybox"},
		{"create", "--pids-limit", "-1", "--oom-score-adj", "-500", "--oom-kill-disable", "busybox"},
		{"create", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=64", "busybox"},
		{"create", "--device", "/dev/null:/dev/xnull:rw", "--device", "/dev/zero", "--device", "/dev/full:r", "busybox"},
		{"create", "--read-only", "--tmpfs", "/run:rw,size=64m", "--tmpfs", "/tmp", "busybox"},
		{"create", "--cap-add", "NET_ADMIN", "--cap-add", "cap_sys_time", "--cap-drop", "ALL", "busybox"},
		{"create", "--privileged", "--security-opt", "no-new-privileges", "--security-opt", "apparmor=unconfined", "busybox"},
		{"create", "--security-opt", "seccomp=testdata/seccomp.json", "busybox"},
		{"create", "--restart", "on-failure:3", "busybox"},
		{"create", "--restart", "unless-stopped", "--init", "--stop-signal", "SIGINT", "--stop-timeout", "5", "busybox"},
		{"create", "--rm", "busybox"},
		{"create", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "128m", "--runtime", "runc", "busybox"},
		{"create", "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox"},
		{"create", "--network", "none", "busybox"},
		{"create", "--network", "host", "busybox"},
		{"create", "--network", "container:web", "busybox"},
		{"create", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000-9001:7000-7001", "-p", "443", "--expose", "3000-3001", "busybox"},
		{"create", "-P", "--expose", "80", "busybox"},
		{"create", "--add-host", "db:10.0.0.2", "--add-host", "cache=10.0.0.3", "--dns", "1.1.1.1", "--dns-search", "example.org", "--dns-option", "ndots:2", "busybox"},
		{"create", "--platform", "linux/amd64", "busybox"},
		{"create", "--group-add", "wheel", "--group-add", "1001", "--cgroupns", "private", "busybox"},
		{"create", "--ipc", "host", "--pid", "host", "--uts", "host", "--userns", "host", "--cgroup-parent", "/custom", "busybox"},
		{"create", "-v", "/srv/data:/data:ro", "-v", "named:/named", "-v", "/anon", "-v", "./rel:/rel", "busybox"},
		{"create", "--mount", "type=bind,source=/srv,target=/srv,readonly,bind-propagation=rslave", "busybox"},
		{"create", "--mount", "type=volume,source=vol,target=/vol,volume-nocopy,volume-label=a=b,volume-driver=local,volume-opt=type=tmpfs", "busybox"},
		{"create", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770", "busybox"},
		{"create", "--volumes-from", "web:ro", "busybox"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want, wantQuery, dres := createBody(t, true, args)
			got, gotQuery, bres := createBody(t, false, args)
			if want == nil {
				t.Fatalf("docker sent no create: %+v", dres)
			}
			if got == nil {
				t.Fatalf("berth sent no create: %+v", bres)
			}
			if gotQuery != wantQuery {
				t.Errorf("query %q, docker's %q", gotQuery, wantQuery)
			}
			// Docker passes -e and -v through maps, so their order
			// varies from run to run.
			for _, m := range []map[string]any{got, want} {
				sortList(m, "Env")
				if hc, ok := m["HostConfig"].(map[string]any); ok {
					sortList(hc, "Binds")
				}
			}
			diffJSON(t, "", pruneZero(got), pruneZero(want))
		})
	}
}

// sortList sorts the string list m[key], if there is one.
func sortList(m map[string]any, key string) {
	l, ok := m[key].([]any)
	if !ok {
		return
	}
	slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
}

// pruneZero drops zero values (null, false, 0, "", [] and {}) from
// decoded JSON: the daemon reads a field left out as its zero value, so
// docker's habit of sending empty lists is no difference. A memory
// swappiness of -1 means "unset" too.
func pruneZero(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if k == "MemorySwappiness" && val == -1.0 {
				continue
			}
			if p := pruneZero(val); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = pruneZero(val)
		}
		return out
	case bool:
		if !x {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	}
	return v
}

// diffJSON reports every path where got and want differ.
func diffJSON(t *testing.T, path string, got, want any) {
	t.Helper()
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		for k := range wm {
			diffJSON(t, path+"."+k, gm[k], wm[k])
		}
		for k := range gm {
			if _, ok := wm[k]; !ok {
				diffJSON(t, path+"."+k, gm[k], nil)
			}
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: %s, docker's %s", path, g, w)
	}
}
