package shim

import (
	"time"

	"berth.dev/logs/jsonfile"
)

// logSink receives the container's output (berth.dev/logs/jsonfile's
// Writer): chunks as read, split into entries at newlines by the sink.
type logSink interface {
	WriteLog(stream string, chunk []byte, t time.Time) error
	Flush() error
	Close() error
}

// LogOptions bound the json-file log.
type LogOptions struct {
	MaxSize  int64 // bytes of the live file past which it is rotated; 0 never rotates
	MaxFiles int   // files kept, the live one included; 0 means 1
}

// openLog opens the json-file log at path, or a sink that drops
// everything when path is empty.
func openLog(path string, opts LogOptions) (logSink, error) {
	if path == "" {
		return discardLog{}, nil
	}
	return jsonfile.NewWriter(path, jsonfile.Options{MaxSize: opts.MaxSize, MaxFiles: opts.MaxFiles})
}

type discardLog struct{}

func (discardLog) WriteLog(string, []byte, time.Time) error { return nil }
func (discardLog) Flush() error                             { return nil }
func (discardLog) Close() error                             { return nil }
