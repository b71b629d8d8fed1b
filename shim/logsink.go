package shim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// logSink receives the container's output lines. It has the API of
// berth.dev/logs/jsonfile's Writer, which replaces fileLog once it lands.
type logSink interface {
	WriteLog(stream string, line []byte, t time.Time) error
	Flush() error
	Close() error
}

// LogOptions bound the json-file log.
type LogOptions struct {
	MaxSize  int64 // bytes per file before rotation; 0 means unbounded
	MaxFiles int   // files kept, the live one included
}

// openLog opens the log at path, or a sink that drops everything when
// path is empty.
func openLog(path string, opts LogOptions) (logSink, error) {
	if path == "" {
		return discardLog{}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &fileLog{f: f, w: bufio.NewWriter(f)}, nil
}

// fileLog writes Docker's json-file format without rotation: a stand-in
// until berth.dev/logs/jsonfile is available.
type fileLog struct {
	f *os.File
	w *bufio.Writer
}

type jsonLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func (l *fileLog) WriteLog(stream string, line []byte, t time.Time) error {
	data, err := json.Marshal(jsonLine{Log: string(line), Stream: stream, Time: t.UTC()})
	if err != nil {
		return err
	}
	l.w.Write(data)
	return l.w.WriteByte('\n')
}

func (l *fileLog) Flush() error { return l.w.Flush() }

func (l *fileLog) Close() error {
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

type discardLog struct{}

func (discardLog) WriteLog(string, []byte, time.Time) error { return nil }
func (discardLog) Flush() error                             { return nil }
func (discardLog) Close() error                             { return nil }
