package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestSameAsDocker runs the real docker CLI and berth against the same
// fake daemon and expects the same output and exit status. Docker's
// program name in messages is the only difference allowed.
func TestSameAsDocker(t *testing.T) {
	e := newTestEnv(t)
	for _, args := range [][]string{
		{"images"},
		{"images", "--digests"},
		{"images", "--no-trunc"},
		{"images", "-q"},
		{"images", "--format", "json"},
		{"images", "--format", "table {{.Repository}}:{{.Tag}}\t{{.Size}}"},
		{"images", "--format", "{{.ID}} {{.CreatedSince}}"},
		{"images", "--format", "{{"},
		{"image", "ls", "-a"},
		{"history", "busybox"},
		{"history", "--no-trunc", "busybox"},
		{"history", "-H=false", "busybox"},
		{"history", "-q", "busybox"},
		{"history", "--format", "json", "busybox"},
		{"history", "nosuch"},
		{"image", "inspect", "busybox"},
		{"image", "inspect", "-f", "{{.Size}} {{.Id}} {{json .RepoTags}}", "busybox"},
		{"image", "inspect", "busybox", "nosuch"},
		{"inspect", "nosuch"},
		{"rmi", "nosuch", "busybox"},
		{"rmi", "-f", "nosuch"},
		{"tag", "busybox", "example/busybox:v1"},
		{"tag", "nosuch", "x"},
		{"pull", "busybox"},
		{"pull", "-q", "busybox"},
		{"pull", "nosuch"},
		{"pull", "broken"},
		{"pull", "Busy"},
		{"push", "localhost:5000/team/busybox:1.36"},
		{"push", "-q", "localhost:5000/team/busybox:1.36"},
		{"image", "prune", "-f"},
		{"system", "df"},
		{"logout", "localhost:5000"},
		{"login", "-u", "user", "-p", "wrong", "localhost:5000"},
		{"images", "a", "b"},
		{"history"},
		{"rmi"},
		{"tag", "a"},
		{"images", "--bogus"},
		{"foo"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want := e.docker(args...)
			got := e.berth("", args...)
			if got.code != want.code {
				t.Errorf("exit status %d, docker's %d", got.code, want.code)
			}
			if args[0] == "images" || args[0] == "image" && args[1] == "ls" {
				// Docker walks a map for the rows of one image, so their
				// order varies from run to run.
				got.stdout, want.stdout = sortedLines(got.stdout), sortedLines(want.stdout)
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

// sortedLines keeps the first line (a header) and sorts the others.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	// A table's header stays on top; JSON lines have none.
	first := 1
	if len(lines) > 0 && strings.HasPrefix(lines[0], "{") {
		first = 0
	}
	if len(lines) > first {
		slices.Sort(lines[first:])
	}
	return strings.Join(lines, "\n") + "\n"
}

// dockerToBerth renames the program in docker's usage messages, and
// drops a stray "S" that docker 28 prints before "Run" after "requires at
// most" (a bug in its usage template).
func dockerToBerth(s string) string {
	s = strings.ReplaceAll(s, "docker", "berth")
	return strings.ReplaceAll(s, "\nSRun '", "\nRun '")
}
