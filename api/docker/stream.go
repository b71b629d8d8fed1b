package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/docker/go-units"

	"berth.dev/api/docker/backend"
)

// jsonMessage is one line of Docker's JSON message stream, the body of
// pull, push, load and import. The docker CLI redraws the line named by ID
// with Status and, on a terminal, a bar computed from progressDetail; other
// clients print Progress as given.
type jsonMessage struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ProgressDetail *progressDetail `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ID             string          `json:"id,omitempty"`
	ErrorDetail    *errorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
	Aux            any             `json:"aux,omitempty"`
}

type progressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

type errorDetail struct {
	// Code, when set, is the exit code the docker CLI ends with (a build
	// whose RUN step failed ends with that step's code).
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// exitCoder is an error that carries a process's exit code.
type exitCoder interface{ ExitCode() int }

// jsonStream is a response of JSON lines, each flushed as it is written:
// the backend.ProgressWriter of one request, and the events stream. The status line
// goes out with the first message, so an operation that fails before
// reporting anything is answered with a plain HTTP error (dockerd answers a
// pull of an unknown image with 404, not with 200 and an error line); after
// that, failures are reported in the stream by finish.
type jsonStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
	err     error
}

var _ backend.ProgressWriter = (*jsonStream)(nil)

func newJSONStream(w http.ResponseWriter) *jsonStream {
	return &jsonStream{w: w}
}

// WriteProgress sends p as one line and flushes it to the client.
func (s *jsonStream) WriteProgress(p backend.Progress) error {
	m := jsonMessage{ID: p.ID, Status: p.Status, Stream: p.Stream, Aux: p.Aux}
	if p.ID != "" || p.Current != 0 || p.Total != 0 {
		// dockerd sends an empty progressDetail with every per-id message.
		m.ProgressDetail = &progressDetail{Current: p.Current, Total: p.Total}
		m.Progress = progressBar(p.Current, p.Total)
	}
	return s.send(m)
}

// send writes v as one JSON line and flushes it.
func (s *jsonStream) send(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if !s.started {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	if err := json.NewEncoder(s.w).Encode(v); err != nil {
		s.err = fmt.Errorf("write progress: %w", err)
		return s.err
	}
	if err := http.NewResponseController(s.w).Flush(); err != nil {
		s.err = fmt.Errorf("flush progress: %w", err)
		return s.err
	}
	return nil
}

// finish ends the stream after the operation returned err. It returns err
// when nothing was written yet, for the router to answer as an HTTP error,
// and otherwise reports err as the stream's last line. A successful
// operation that reported nothing still answers 200 with the stream's
// content type.
func (s *jsonStream) finish(err error) error {
	if err == nil {
		s.start()
		return nil
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return err
	}
	msg := clientMessage(err)
	detail := &errorDetail{Message: msg}
	var ec exitCoder
	if errors.As(err, &ec) {
		detail.Code = ec.ExitCode()
	}
	_ = s.send(jsonMessage{ErrorDetail: detail, Error: msg})
	return nil
}

// start sends the status line and headers now, for streams whose first
// message may come much later (the docker CLI waits for the headers).
func (s *jsonStream) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
		_ = http.NewResponseController(s.w).Flush()
	}
}

// progressBar draws the text bar dockerd puts in "progress": fifty cells
// of "=" up to the percentage, a ">" head, then the byte counts, for example
// "[=>                                                 ]  36.45kB/1.064MB".
// Without a total it shows only the current count; past the total, only the
// current count after a full bar.
func progressBar(current, total int64) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	filled := min(int(float64(current)/float64(total)*100)/2, 50)
	bar := "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", 50-filled) + "] "
	if current > total {
		return bar + fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	return bar + fmt.Sprintf("%8v/%v", units.HumanSize(float64(current)), units.HumanSize(float64(total)))
}

// lazyWriter is the io.Writer of a binary download (image save): the
// headers go out with the first byte, so a failure before any byte is an
// HTTP error.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.WriteHeader(http.StatusOK)
		l.started = true
	}
	return l.w.Write(p)
}

var _ io.Writer = (*lazyWriter)(nil)
