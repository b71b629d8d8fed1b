package docker

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// TestMobyClient drives the server with moby's Go client, the one the
// berth CLI uses, negotiating the API version as it does.
func TestMobyClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	sys, imgs := &fakeSystem{}, &fakeImages{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- NewServer(Backends{System: sys, Images: imgs}).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || v.APIVersion != MaxAPIVersion || v.Version != "0.1.0-test" {
		t.Fatalf("version %+v %v", v, err)
	}
	if got := c.ClientVersion(); got != MaxAPIVersion {
		t.Errorf("negotiated API version %s, want %s", got, MaxAPIVersion)
	}

	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.Name != "berth-test-host" {
		t.Errorf("info %+v %v", info, err)
	}

	list, err := c.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != fakeImageID {
		t.Errorf("image list %+v %v", list, err)
	}

	pull, err := c.ImagePull(ctx, "busybox:latest", client.ImagePullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	var statuses []string
	for m, err := range pull.JSONMessages(ctx) {
		if err != nil {
			t.Fatalf("pull stream: %v", err)
		}
		statuses = append(statuses, m.Status)
	}
	if len(statuses) != 8 || statuses[7] != "Status: Downloaded newer image for busybox:latest" {
		t.Errorf("pull statuses %q", statuses)
	}

	// The legacy /system/df shape decodes for API 1.51.
	du, err := c.DiskUsage(ctx, client.DiskUsageOptions{Images: true, Verbose: true})
	if err != nil || du.Images.TotalCount != 1 || len(du.Images.Items) != 1 {
		t.Errorf("disk usage %+v %v", du, err)
	}

	if _, err := c.ImageInspect(ctx, "nosuch"); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of an unknown image: %v, want a not-found error", err)
	}
	rm, err := c.ImageRemove(ctx, "busybox", client.ImageRemoveOptions{Force: true})
	if err != nil || len(rm.Items) != 2 {
		t.Errorf("remove %+v %v", rm, err)
	}
}
