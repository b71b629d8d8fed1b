package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Freezer is the v1 freezer controller. It has no resources; the
// Manager's Freeze and FreezerState use the functions below.
type v1Freezer struct{}

func (v1Freezer) Name() string                            { return "freezer" }
func (v1Freezer) Wants(*specs.LinuxResources) bool        { return false }
func (v1Freezer) Set(string, *specs.LinuxResources) error { return nil }
func (v1Freezer) Stat(string, *Stats) error               { return nil }

// freezeTimeout bounds a freeze; a cgroup that is still FREEZING after it
// is thawed again and the freeze fails.
const freezeTimeout = 2 * time.Second

// freezeV1 writes the state and polls freezer.state until the kernel
// reports it. A v1 freeze can stall in FREEZING (a task in an
// uninterruptible sleep, or one that forked at the wrong moment), so
// FROZEN is written again every few polls, and after freezeTimeout the
// cgroup is thawed and an error returned: it never stays half frozen.
func freezeV1(dir string, state FreezerState) error {
	if state != Frozen && state != Thawed {
		return fmt.Errorf("%w: freezer state %q", ErrInvalid, state)
	}
	if err := checkDir(dir); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		if i%10 == 0 {
			if err := writeFile(dir, "freezer.state", string(state)); err != nil {
				return fmt.Errorf("freeze: %w", err)
			}
		}
		cur, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if strings.TrimSpace(cur) == string(state) {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(min(i+1, 10)) * time.Millisecond)
	}
	if state == Frozen {
		thawErr := writeFile(dir, "freezer.state", string(Thawed))
		return errors.Join(fmt.Errorf("freeze %s: still FREEZING after %v; thawed again", dir, freezeTimeout), thawErr)
	}
	return fmt.Errorf("thaw %s: still frozen after %v (is a parent cgroup frozen?)", dir, freezeTimeout)
}

// freezerStateV1 maps freezer.state to FreezerState; FREEZING counts as
// not (yet) frozen.
func freezerStateV1(dir string) (FreezerState, error) {
	cur, err := readFile(dir, "freezer.state")
	if err != nil {
		if e := checkDir(dir); e != nil {
			return "", e
		}
		return "", err
	}
	if strings.TrimSpace(cur) == string(Frozen) {
		return Frozen, nil
	}
	return Thawed, nil
}
