package main

import (
	"fmt"
	"io"
	"os"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// logger writes the runtime's messages the way runc does: to --log in text
// or JSON lines (containerd and Podman read the last error from there), and
// errors also to stderr.
type logger struct {
	file   *os.File
	json   bool
	stderr io.Writer
}

func newLogger(path, format string, stderr io.Writer) (*logger, error) {
	l := &logger{stderr: stderr}
	switch format {
	case "text", "":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("unknown log format %q: use text or json", format)
	}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		l.file = f
	}
	return l, nil
}

func (l *logger) close() {
	if l.file != nil {
		l.file.Close()
	}
}

func (l *logger) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	now := time.Now()
	if l.file != nil {
		if l.json {
			line, _ := json.Marshal(map[string]string{
				"level": "error",
				"msg":   msg,
				"time":  now.Format(time.RFC3339Nano),
			})
			l.file.Write(append(line, '\n'))
		} else {
			fmt.Fprintf(l.file, "time=%q level=error msg=%q\n", now.Format(time.RFC3339Nano), msg)
		}
	}
	fmt.Fprintf(l.stderr, "berth-runtime: %s\n", msg)
}

func (l *logger) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.file != nil && l.json {
		line, _ := json.Marshal(map[string]string{"level": "warning", "msg": msg, "time": time.Now().Format(time.RFC3339Nano)})
		l.file.Write(append(line, '\n'))
		return
	}
	fmt.Fprintf(l.stderr, "berth-runtime: warning: %s\n", msg)
}
