package registry

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"berth.dev/internal/errdefs"
)

// ErrorDetail is one entry of the error list a registry returns in a failed
// response's body: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}.
type ErrorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// ResponseError is a failed registry response. It unwraps to the errdefs
// category of its status code: 404 to ErrNotFound, 401 to ErrUnauthorized,
// 403 to ErrForbidden, 429 and 5xx to ErrUnavailable, 409 to ErrConflict,
// 405 to ErrNotImplemented and other 4xx to ErrInvalidArgument.
type ResponseError struct {
	StatusCode int
	Errors     []ErrorDetail
}

// maxErrorBody bounds how much of a failed response's body is read.
const maxErrorBody = 64 << 10

// newResponseError reads (a bounded part of) resp's body and closes it.
func newResponseError(resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var list struct {
		Errors []ErrorDetail `json:"errors"`
	}
	if json.Unmarshal(body, &list) == nil {
		e.Errors = list.Errors
	}
	return e
}

func (e *ResponseError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("%s: %d %s", e.Unwrap(), e.StatusCode, strings.ToLower(http.StatusText(e.StatusCode)))
	}
	parts := make([]string, 0, len(e.Errors))
	for _, d := range e.Errors {
		code := strings.ToLower(strings.ReplaceAll(d.Code, "_", " "))
		switch {
		case code == "":
			parts = append(parts, d.Message)
		case d.Message == "" || strings.EqualFold(d.Message, code):
			parts = append(parts, code)
		default:
			parts = append(parts, code+": "+d.Message)
		}
	}
	return e.Unwrap().Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns the errdefs category of the status code.
func (e *ResponseError) Unwrap() error {
	switch {
	case e.StatusCode == http.StatusNotFound:
		return errdefs.ErrNotFound
	case e.StatusCode == http.StatusUnauthorized:
		return errdefs.ErrUnauthorized
	case e.StatusCode == http.StatusForbidden:
		return errdefs.ErrForbidden
	case e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500:
		return errdefs.ErrUnavailable
	case e.StatusCode == http.StatusConflict:
		return errdefs.ErrConflict
	case e.StatusCode == http.StatusMethodNotAllowed:
		return errdefs.ErrNotImplemented
	default:
		return errdefs.ErrInvalidArgument
	}
}

// HasCode reports whether the registry listed an error with the given code
// (such as "BLOB_UNKNOWN").
func (e *ResponseError) HasCode(code string) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// transient reports whether a response status is worth retrying.
func transientStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout ||
		code == http.StatusInternalServerError
}
