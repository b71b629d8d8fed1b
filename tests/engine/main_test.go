// Package engine_test drives the real berthd through its API, with the
// docker CLI where it is installed.
package engine_test

import (
	"fmt"
	"os"
	"testing"

	"berth.dev/tests/enginetest"
)

var bin enginetest.Binaries

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("skipping: the engine tests need root")
		os.Exit(0)
	}
	b, cleanup, err := enginetest.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = b
	restore := enginetest.KeepCgroupParents()
	code := m.Run()
	restore()
	cleanup()
	os.Exit(code)
}
