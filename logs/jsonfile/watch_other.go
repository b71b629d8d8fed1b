//go:build !linux

package jsonfile

func newWatcher(string) watcher { return poller{} }
