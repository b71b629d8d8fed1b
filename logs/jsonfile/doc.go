// Package jsonfile writes and reads container logs in Docker's json-file
// format, so that berth-shim can record a container's output and berthd can
// serve it to `docker logs`.
//
// A log file holds one JSON object per line, with Docker's field names:
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-26T22:00:00.123456789Z"}
//
// "log" is one line of output including its "\n". A line longer than
// MaxEntrySize bytes is split into several entries; all but the last lack
// the "\n". Output still unterminated when the Writer is flushed or closed is
// written as an entry without "\n" too. "time" is RFC 3339 with nanoseconds,
// in UTC.
//
// The Writer rotates like Docker's max-size/max-file options: when the live
// file would grow past MaxSize, path.(n-1) is renamed to path.n, ..., path to
// path.1, and a new path is created. Each entry goes whole into one file and
// every step is a rename, so a reader holding the old file open loses nothing.
//
// Read returns the entries of the rotated files, oldest first, then of the
// live file, and with Follow keeps returning new ones, following rotations, until
// its context ends or ReadOptions.Done is closed.
package jsonfile
