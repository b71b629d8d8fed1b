package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"berth.dev/internal/errdefs"
)

// LineError is an error of one Dockerfile instruction: its text reads
// "Dockerfile:3: unknown instruction: FOO". It unwraps to the cause and,
// for a Dockerfile that is wrong (not a failing step), to
// errdefs.ErrInvalidArgument.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Err.Error())
}

func (e *LineError) Unwrap() error { return e.Err }

// CommandError is a RUN step whose command failed; its text is docker's
// ("The command '/bin/sh -c false' returned a non-zero code: 1") and it
// unwraps to the *ExitError.
type CommandError struct {
	Command string
	Exit    *ExitError
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.Command, e.Exit.Code)
}

func (e *CommandError) Unwrap() error { return e.Exit }

// invalid marks a Dockerfile mistake whose cause carries no category.
func invalid(err error) error {
	if hasCategory(err) {
		return err
	}
	return &categorized{err: err, cat: errdefs.ErrInvalidArgument}
}

type categorized struct {
	err, cat error
}

func (c *categorized) Error() string   { return c.err.Error() }
func (c *categorized) Unwrap() []error { return []error{c.err, c.cat} }

func hasCategory(err error) bool {
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrFailedPrecondition, errdefs.ErrConflict, errdefs.ErrUnavailable, errdefs.ErrNotImplemented,
		errdefs.ErrUnauthorized, errdefs.ErrForbidden} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// withLine names the first line of loc in err (err unchanged when it
// already names one, or when loc is empty).
func withLine(file string, loc []parser.Range, err error) error {
	if err == nil {
		return nil
	}
	var le *LineError
	if errors.As(err, &le) || len(loc) == 0 {
		return err
	}
	var ce *CommandError
	if errors.As(err, &ce) {
		return err
	}
	return &LineError{File: file, Line: loc[0].Start.Line, Err: err}
}

// lineError turns an error of buildkit's parser into a *LineError (the
// innermost message, without buildkit's "dockerfile parse error on line
// N:" prefix, which the line number replaces).
func lineError(file string, err error) error {
	var loc *parser.LocationError
	if !errors.As(err, &loc) || len(loc.Locations) == 0 || len(loc.Locations[0]) == 0 {
		return invalid(fmt.Errorf("%s: %w", file, err))
	}
	inner := loc.Unwrap()
	msg := inner.Error()
	if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "dockerfile parse error") && i >= 0 {
		msg = msg[i+2:]
	}
	return &LineError{File: file, Line: loc.Locations[0][0].Start.Line, Err: invalid(&message{msg: msg, err: inner})}
}

// message is err with another text.
type message struct {
	msg string
	err error
}

func (m *message) Error() string { return m.msg }
func (m *message) Unwrap() error { return m.err }
