package mountopt

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlags(t *testing.T) {
	flags, data, err := Flags([]string{"ro", "rbind", "nosuid", "rw", "nodev", "lowerdir=/a:/b", "index=off"})
	if err != nil {
		t.Fatal(err)
	}
	if want := uintptr(unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NODEV); flags != want {
		t.Errorf("flags %#x, want %#x (rw after ro clears it)", flags, want)
	}
	if !reflect.DeepEqual(data, []string{"lowerdir=/a:/b", "index=off"}) {
		t.Errorf("data %q", data)
	}
	if _, _, err := Flags([]string{"rprivate"}); err == nil {
		t.Error("a propagation option was taken as a plain flag")
	}
	if f, _, _ := Flags([]string{"bind"}); f != unix.MS_BIND {
		t.Errorf("bind = %#x", f)
	}
}
