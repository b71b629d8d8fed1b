package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"berth.dev/internal/errdefs"
)

// statusOf maps an error's category (berth.dev/internal/errdefs) to the
// HTTP status dockerd answers for the same condition. An uncategorized error
// is the server's fault: 500.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrAlreadyExists), errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		// dockerd answers 409 for "conflict: unable to remove ... image is
		// being used" and 304 only for start/stop no-ops, which the
		// container routes handle themselves.
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is dockerd's error document: {"message":"..."}.
type errorBody struct {
	Message string `json:"message"`
}

// writeError answers err with its status and {"message": err.Error()}.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), errorBody{Message: clientMessage(err)})
}

// clientMessage is err's text without the names of berth's error
// categories that wrapping adds ("not found: No such container: x",
// "create x: exec: ...: failed precondition"), which dockerd's messages do
// not have. "unauthorized: " and "forbidden: " stay at the front, and
// "conflict: " before "unable to ...": dockerd's and registries' messages
// begin that way themselves.
func clientMessage(err error) string {
	msg := err.Error()
	for {
		before := msg
		for _, k := range []error{errdefs.ErrNotFound, errdefs.ErrInvalidArgument, errdefs.ErrFailedPrecondition,
			errdefs.ErrUnavailable, errdefs.ErrNotImplemented, errdefs.ErrAlreadyExists, errdefs.ErrConflict,
			errdefs.ErrUnauthorized, errdefs.ErrForbidden} {
			msg = strings.TrimSuffix(msg, ": "+k.Error())
			switch {
			case k == errdefs.ErrUnauthorized || k == errdefs.ErrForbidden:
			case k == errdefs.ErrConflict && strings.HasPrefix(msg, "conflict: unable to "):
			default:
				msg = strings.TrimPrefix(msg, k.Error()+": ")
				// A category wrapped inside a message of its own
				// ("Dockerfile:1: not implemented: platform ...").
				msg = strings.ReplaceAll(msg, ": "+k.Error()+": ", ": ")
			}
		}
		if msg == before || msg == "" {
			return msg
		}
	}
}

// writeJSON answers v as JSON with the given status. An encoding failure
// after the header is out can only be logged by the caller's connection
// dying, so it is ignored here.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is an error the server itself answers with: its text is exactly
// what the client shows, and kind (an errdefs category) picks the status,
// without the category's name being appended to the text. cause, when set,
// stays reachable with errors.Is/As.
type apiError struct {
	msg   string
	kind  error
	cause error
}

func (e *apiError) Error() string { return e.msg }

func (e *apiError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// newError returns an error of category kind with the formatted text. A
// %w verb in format records its operand as the cause.
func newError(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &apiError{msg: err.Error(), kind: kind, cause: errors.Unwrap(err)}
}
