package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order, each with the container state as JSON on its
// stdin, and stops at the first that fails, times out or cannot start.
//
// The runtime specification's hooks: the path is absolute and resolved in
// the runtime's mount namespace (or the container's for createContainer and
// startContainer, which the init runs); args includes argv[0]; env replaces
// the environment; timeout, when set, is in seconds.
func runHooks(kind string, hooks []specs.Hook, st *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	input, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(h, input); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// runHooksWarn runs every hook even when some fail, and returns their
// failures joined: the spec's poststop hooks, whose failure is a warning
// after which "the remaining hooks and lifecycle continue as if the hook
// had succeeded".
func runHooksWarn(kind string, hooks []specs.Hook, st *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	input, err := json.Marshal(st)
	if err != nil {
		return err
	}
	var errs []error
	for i, h := range hooks {
		if err := runHook(h, input); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err))
		}
	}
	return errors.Join(errs...)
}

func runHook(h specs.Hook, input []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("%w: timeout must be positive, got %d", ErrInvalid, *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A hook that forks a daemon keeping stdout open must not hang us.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// hooksOf returns the spec's hooks, never nil.
func hooksOf(s *specs.Spec) *specs.Hooks {
	if s.Hooks == nil {
		return &specs.Hooks{}
	}
	return s.Hooks
}
