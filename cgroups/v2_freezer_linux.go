package cgroups

import (
	"errors"
	"fmt"
	"time"
)

// The v2 freezer: write cgroup.freeze, then wait until the "frozen" line of
// cgroup.events agrees. The kernel freezes asynchronously, and a cgroup
// frozen by an ancestor stays frozen whatever its own cgroup.freeze says.

func freezeV2(dir string, state FreezerState) error {
	want := ""
	switch state {
	case Frozen:
		want = "1"
	case Thawed:
		want = "0"
	default:
		return fmt.Errorf("%w: freezer state %q", ErrInvalid, state)
	}
	if err := checkDir(dir); err != nil {
		return err
	}
	if err := writeFile(dir, "cgroup.freeze", want); err != nil {
		return fmt.Errorf("freeze: %w", classifyWriteError(dir, "cgroup.freeze", want, err))
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 1; ; i++ {
		frozen, err := eventsFrozen(dir)
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if frozen == (state == Frozen) {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(min(i, 10)) * time.Millisecond)
	}
	if state == Frozen {
		thawErr := writeFile(dir, "cgroup.freeze", "0")
		return errors.Join(fmt.Errorf("freeze %s: not frozen after %v; thawed again", dir, freezeTimeout), thawErr)
	}
	return fmt.Errorf("thaw %s: still frozen after %v (is a parent cgroup frozen?)", dir, freezeTimeout)
}

// eventsFrozen reads the frozen line of cgroup.events.
func eventsFrozen(dir string) (bool, error) {
	text, err := readFile(dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return parseFlatKeyed(text)["frozen"] == 1, nil
}

func freezerStateV2(dir string) (FreezerState, error) {
	if err := checkDir(dir); err != nil {
		return "", err
	}
	if !fileExists(dir, "cgroup.freeze") {
		return Thawed, nil // kernel before 5.2: no freezer at all
	}
	frozen, err := eventsFrozen(dir)
	if err != nil {
		return "", err
	}
	if frozen {
		return Frozen, nil
	}
	return Thawed, nil
}
