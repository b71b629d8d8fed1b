package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestSystemInfoAndVersion(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Root = t.TempDir()
	ev := NewEvents(10)
	s, err := NewSystem(cfg, ev, "0.1.0", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	s.SetCounts(func(context.Context) (int, int, int, int) { return 4, 3, 1, 1 })
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Images != 4 || info.Containers != 3 || info.ContainersStopped != 1 || info.DockerRootDir != cfg.Root ||
		info.ServerVersion != "0.1.0" || info.OSType != "linux" || info.NCPU < 1 || info.MemTotal <= 0 || info.KernelVersion == "" {
		t.Fatalf("info %+v", info)
	}
	if info.CgroupVersion != "1" && info.CgroupVersion != "2" {
		t.Errorf("cgroup version %q", info.CgroupVersion)
	}
	// The ID survives a restart.
	s2, err := NewSystem(cfg, ev, "0.1.0", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if s2.id != s.id || len(s.id) != 36 {
		t.Errorf("engine id %q then %q", s.id, s2.id)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.Root, "engine-id")); len(b) == 0 {
		t.Error("engine id not stored")
	}
	v, err := s.Version(context.Background())
	if err != nil || v.Version != "0.1.0" || v.GitCommit != "abc123" || v.Os != "linux" {
		t.Fatalf("version %+v, %v", v, err)
	}
}

func TestSystemEvents(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Root = t.TempDir()
	ev := NewEvents(10)
	s, err := NewSystem(cfg, ev, "v", "c")
	if err != nil {
		t.Fatal(err)
	}
	ev.Publish(events.ImageEventType, events.ActionPull, "old", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	past, live, err := s.SubscribeEvents(ctx, time.Time{})
	if err != nil || len(past) != 0 {
		t.Fatalf("no since: %v %v", past, err)
	}
	ev.Publish(events.ImageEventType, events.ActionTag, "new", nil)
	if m := <-live; m.Actor.ID != "new" {
		t.Fatalf("live %+v", m)
	}
	past, _, _ = s.SubscribeEvents(ctx, time.Unix(1, 0))
	if len(past) != 2 {
		t.Fatalf("since epoch: %d events, want 2", len(past))
	}
}
