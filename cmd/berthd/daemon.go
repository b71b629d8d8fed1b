package main

import (
	"log/slog"

	"berth.dev/api/docker"
	"berth.dev/engine"
)

// daemon wires the engine's services together; it is the one place that
// knows every concrete type.
type daemon struct {
	cfg    *engine.Config
	log    *slog.Logger
	events *engine.Events
	system *engine.System
}

func newDaemon(cfg *engine.Config, log *slog.Logger) (*daemon, error) {
	ev := engine.NewEvents(1024)
	sys, err := engine.NewSystem(cfg, ev, version, commit)
	if err != nil {
		return nil, err
	}
	sys.SetAPIVersions(docker.MaxAPIVersion, docker.MinAPIVersion)
	return &daemon{cfg: cfg, log: log, events: ev, system: sys}, nil
}

func (d *daemon) backends() docker.Backends {
	return docker.Backends{System: d.system}
}

func (d *daemon) close() {}
