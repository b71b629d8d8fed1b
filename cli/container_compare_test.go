package cli

import (
	"strings"
	"testing"
)

// TestContainerCommandsSameAsDocker runs docker's CLI and berth against
// fresh container fakes and expects the same output and exit status.
func TestContainerCommandsSameAsDocker(t *testing.T) {
	for _, args := range [][]string{
		{"ps"},
		{"ps", "-a"},
		{"ps", "-a", "--no-trunc"},
		{"ps", "-aq"},
		{"ps", "-a", "-s"},
		{"ps", "-n", "2"},
		{"ps", "-l"},
		{"ps", "-a", "--format", "json"},
		{"ps", "-a", "--format", "table {{.Names}}\t{{.Labels}}\t{{.Mounts}}\t{{.Networks}}\t{{.LocalVolumes}}\t{{.State}}"},
		{"ps", "-a", "--format", "{{.ID}} {{.Label \"tier\"}} {{.Size}}"},
		{"ps", "--format", "{{"},
		{"container", "ls", "-a"},
		{"container", "list", "-q"},
		{"volume", "ls"},
		{"volume", "ls", "-q"},
		{"volume", "ls", "--format", "json"},
		{"volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}\t{{.Scope}}\t{{.Mountpoint}}"},
		{"volume", "inspect", "cache"},
		{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}}", "cache", "nosuch"},
		{"volume", "create", "--label", "a=b", "-o", "type=tmpfs", "myvol"},
		{"volume", "create"},
		{"volume", "rm", "cache", "nosuch"},
		{"volume", "prune", "-f"},
		{"volume", "prune", "-a", "-f"},
		{"inspect", "--type", "volume", "cache"},
		{"inspect", "-f", "{{.Name}}", "web", "cache"},
		{"inspect", "nosuch"},
		{"container", "inspect", "-f", "{{.State.Status}} {{.Id}}", "web"},
		{"container", "inspect", "nosuch"},
		{"stats", "--no-stream", "web"},
		{"stats", "--no-stream", "--no-trunc", "web"},
		{"stats", "--no-stream", "--format", "json", "web"},
		{"stats", "--no-stream", "--format", "table {{.Container}}\t{{.CPUPerc}}\t{{.MemUsage}}", "web"},
		{"stats", "--no-stream"},
		{"logs", "web"},
		{"logs", "nosuch"},
		{"top", "web"},
		{"port", "web"},
		{"port", "web", "80"},
		{"port", "web", "81/udp"},
		{"stop", "web", "nosuch"},
		{"stop", "-t", "3", "-s", "SIGINT", "web"},
		{"kill", "-s", "HUP", "web"},
		{"restart", "web"},
		{"pause", "web"},
		{"unpause", "web"},
		{"rm", "web"},
		{"rm", "-f", "web", "nosuch"},
		{"rm", "nosuch"},
		{"rename", "web", "web2"},
		{"wait", "old_job"},
		{"update", "--memory", "256m", "--restart", "always", "web"},
		{"update", "web"},
		{"container", "prune", "-f"},
		{"system", "prune", "-f"},
		{"system", "prune", "-f", "--volumes"},
		{"run", "-d", "busybox"},
		{"run", "--pull", "always", "-d", "busybox"},
		{"run", "--pull", "always", "-q", "-d", "busybox"},
		{"run", "-d", "--name", "named", "--rm", "busybox"},
		{"run", "-d", "alpine"},
		{"create", "-q", "alpine"},
		{"run", "busybox", "echo", "hi"},
		{"run", "-a", "stderr", "busybox", "echo", "hi"},
		{"run", "busybox", "exit", "3"},
		{"run", "--rm", "busybox", "exit", "4"},
		{"run", "busybox", "nosuchcmd"},
		{"run", "busybox", "/etc"},
		{"run", "nosuch"},
		{"run", "-q", "alpine", "exit", "2"},
		{"run", "--pull", "never", "alpine"},
		{"run", "--pull", "bogus", "busybox"},
		{"run", "-d", "-a", "stdout", "busybox"},
		{"create", "busybox"},
		{"create", "--restart", "bogus", "busybox"},
		{"create", "--restart", "always:3", "busybox"},
		{"create", "--cpus", "abc", "busybox"},
		{"create", "-m", "12x", "busybox"},
		{"create", "--rm", "--restart", "always", "busybox"},
		{"create", "--ulimit", "nofile=a", "busybox"},
		{"create", "--cgroupns", "bogus", "busybox"},
		{"start", "old_job"},
		{"start", "nosuch"},
		{"exec", "web", "ls"},
		{"exec", "-d", "web", "ls"},
		{"diff"},
		{"diff", "web"},
		{"diff", "nosuch"},
		{"commit", "-m", "msg", "-a", "me", "-c", "ENV A=1", "web", "example/web:v1"},
		{"commit", "nosuch"},
		{"export", "web"},
		{"export", "nosuch"},
		{"attach", "web"},
		{"attach", "--no-stdin", "web"},
		{"attach", "old_job"},
		{"attach", "nosuch"},
		{"start", "-a", "digested"},
		{"exec", "nosuch", "ls"},
		{"logs", "-t", "--since", "1h", "-n", "5", "web"},
		{"top", "web", "-ef"},
		{"wait", "nosuch", "old_job"},
		{"rename", "nosuch", "x"},
		{"inspect", "--type", "container", "cache"},
		{"inspect", "--type", "network", "cache"},
		{"cp", "a", "b"},
		{"run"},
		{"run", "--bogus", "busybox"},
		{"create"},
		{"stop"},
		{"volume", "rm"},
		{"volume", "create", "a", "b"},
		{"container", "bogus"},
		{"port", "web", "80", "x"},
		{"commit"},
		{"commit", "web", "a", "b"},
		{"exec", "web"},
		{"rename", "web"},
		{"start", "-a", "old_job", "web"},
		{"cp", "web:/a", "other:/b"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			de, _ := newContainerTestEnv(t)
			be, _ := newContainerTestEnv(t)
			want := de.docker(args...)
			got := be.berth("", args...)
			if got.code != want.code {
				t.Errorf("exit status %d, docker's %d", got.code, want.code)
			}
			if args[0] == "volume" && args[1] == "create" && len(args) == 2 {
				// An anonymous volume's name is the daemon's choice.
				got.stdout, want.stdout = "", ""
			}
			if got.stdout != want.stdout {
				t.Errorf("stdout:\n%s\ndocker's:\n%s", got.stdout, want.stdout)
			}
			if wantErr := dockerToBerth(want.stderr); got.stderr != wantErr {
				t.Errorf("stderr:\n%q\ndocker's (renamed):\n%q", got.stderr, wantErr)
			}
		})
	}
}
