package engine_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"berth.dev/image"
	"berth.dev/registry/registrytest"
	"berth.dev/snapshot"
	"berth.dev/snapshot/overlay"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// treeListing describes every path under root: type, mode, owner, size
// and link target, one line each, sorted.
func treeListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, st.Mode(), sys.Uid, sys.Gid)
		switch {
		case st.Mode().IsRegular():
			line += fmt.Sprintf(" %d", st.Size())
		case st.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// The tree berth unpacks (the image's layer snapshots stacked as a
// container sees them) is the one umoci unpacks from the same image:
// paths, types, modes, owners, sizes and link targets.
func TestUnpackMatchesUmoci(t *testing.T) {
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Skip("needs umoci")
	}
	for name, img := range map[string]*images.Image{"busybox": images.Busybox(t), "layered": images.Layered(t)} {
		t.Run(name, func(t *testing.T) {
			layout := t.TempDir()
			if err := img.WriteOCILayout(layout, "x"); err != nil {
				t.Fatal(err)
			}
			bundle := filepath.Join(t.TempDir(), "bundle")
			if out, err := exec.Command(umoci, "unpack", "--image", layout+":x", bundle).CombinedOutput(); err != nil {
				t.Fatalf("umoci unpack: %v\n%s", err, out)
			}
			want := treeListing(t, filepath.Join(bundle, "rootfs"))

			reg := registrytest.Start(t)
			ref := reg.Ref("berth-test/" + name + ":1")
			pushImage(t, ref, img)
			d := enginetest.Start(t, bin, "")
			mustDocker(t, d, "pull", ref)
			d.Stop()

			snaps, err := overlay.New(filepath.Join(d.Root, "snapshots"))
			if err != nil {
				t.Fatal(err)
			}
			defer snaps.Close()
			ctx := context.Background()
			chain := image.ChainIDs(img.DiffIDs())
			mounts, err := snaps.View(ctx, "view", chain[len(chain)-1].String())
			if err != nil {
				t.Fatal(err)
			}
			mnt := t.TempDir()
			if err := snapshot.MountAll(mounts, mnt); err != nil {
				t.Fatal(err)
			}
			defer snapshot.UnmountAll(mnt)
			got := treeListing(t, mnt)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("berth's tree differs from umoci's:\nberth:\n%s\numoci:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
