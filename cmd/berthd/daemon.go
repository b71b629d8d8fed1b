package main

import (
	"context"
	"errors"
	"fmt"
	mobyregistry "github.com/moby/moby/api/types/registry"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"berth.dev/api/docker"
	"berth.dev/content"
	"berth.dev/engine"
	"berth.dev/engine/volumes"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/registry"
	"berth.dev/snapshot"
	"berth.dev/snapshot/native"
	"berth.dev/snapshot/overlay"
	"github.com/moby/moby/api/types/events"
)

// daemon wires the engine's services together; it is the one place that
// knows every concrete type.
type daemon struct {
	cfg    *engine.Config
	log    *slog.Logger
	events *engine.Events
	system *engine.System
	images *engine.Images
	ctrs   *engine.Containers
	vols   *volumes.Store
	nets   *engine.Networks
	builds *engine.Builds

	db    *metadata.DB
	snaps snapshot.Snapshotter
}

func newDaemon(cfg *engine.Config, log *slog.Logger) (_ *daemon, err error) {
	// Not the named result: a failed return sets that to nil before the
	// deferred close would read it.
	d := &daemon{cfg: cfg, log: log, events: engine.NewEvents(1024)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.system, err = engine.NewSystem(cfg, d.events, version, commit); err != nil {
		return nil, err
	}
	d.system.SetAPIVersions(docker.MaxAPIVersion, docker.MinAPIVersion)

	if d.db, err = metadata.Open(cfg.MetadataPath()); err != nil {
		return nil, err
	}
	store, err := content.Open(cfg.ContentDir())
	if err != nil {
		return nil, err
	}
	if d.snaps, err = openSnapshotter(cfg.SnapshotDir(), log); err != nil {
		return nil, err
	}
	var rc registry.Config
	if err := cfg.DecodeRegistry(&rc); err != nil {
		return nil, fmt.Errorf("config [registry]: %w", err)
	}
	hosts, err := registry.NewHosts(rc.Hosts...)
	if err != nil {
		return nil, fmt.Errorf("config [registry]: %w", err)
	}
	d.images = engine.NewImages(engine.ImagesConfig{
		Config: cfg, Content: store, Snaps: d.snaps, Names: image.NewStore(d.db), DB: d.db,
		Hosts: hosts, Events: d.events, Log: log, Inflater: inflater(),
	})
	if err := d.images.Recover(context.Background()); err != nil {
		return nil, fmt.Errorf("recover from the last run: %w", err)
	}
	// berth's own runtime, for the default and --runtime berth, is the one
	// next to berthd unless berth.toml names another.
	own := binary("berth-runtime")
	if cfg.Runtime == "berth-runtime" {
		cfg.Runtime = own
	}
	if cfg.Runtimes == nil {
		cfg.Runtimes = map[string]string{}
	}
	for _, name := range []string{"berth", "berth-runtime"} {
		if _, ok := cfg.Runtimes[name]; !ok {
			cfg.Runtimes[name] = own
		}
	}
	d.vols, err = volumes.New(filepath.Join(cfg.Root, "volumes"), d.db, volumes.WithEvents(func(a events.Action, name string, attrs map[string]string) {
		d.events.Publish(events.VolumeEventType, a, name, attrs)
	}))
	if err != nil {
		return nil, err
	}
	for _, p := range d.vols.Cleaned() {
		log.Info("removed a volume directory no record owns", "path", p)
	}
	d.nets, err = engine.NewNetworks(context.Background(), engine.NetworksConfig{Config: cfg, DB: d.db, Log: log})
	if err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	d.ctrs = engine.NewContainers(engine.ContainersConfig{
		Config: cfg, Images: d.images, Snaps: d.snaps, DB: d.db, Events: d.events, Log: log,
		Volumes: d.vols, Networks: d.nets, Shim: binary("berth-shim"),
	})
	if err := d.ctrs.Recover(context.Background()); err != nil {
		return nil, fmt.Errorf("recover the containers of the last run: %w", err)
	}
	d.builds = engine.NewBuilds(engine.BuildsConfig{Config: cfg, Images: d.images, Containers: d.ctrs, DB: d.db, Log: log})
	if err := d.builds.Recover(context.Background()); err != nil {
		return nil, fmt.Errorf("recover the builds of the last run: %w", err)
	}
	d.system.SetDiskUsage(d.images.DiskUsage)
	d.system.SetCounts(func(ctx context.Context) (int, int, int, int) {
		total, running, paused, _ := d.ctrs.Count()
		return d.images.Count(ctx), total, running, paused
	})
	login := registry.New(registry.WithHosts(hosts))
	d.system.SetLogin(func(ctx context.Context, auth mobyregistry.AuthConfig) (string, error) {
		host := auth.ServerAddress
		if host == "" {
			host = "docker.io"
		}
		return login.Login(ctx, host, registry.AuthConfig{
			Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken,
			RegistryToken: auth.RegistryToken, ServerAddress: auth.ServerAddress,
		})
	})
	return d, nil
}

// openSnapshotter uses overlayfs where it works and full copies elsewhere.
func openSnapshotter(root string, log *slog.Logger) (snapshot.Snapshotter, error) {
	o, err := overlay.New(root)
	if err == nil {
		return o, nil
	}
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		return nil, err
	}
	log.Warn("overlayfs does not work here; using the native snapshotter (full copies)", "err", err)
	return native.New(root)
}

func (d *daemon) backends() docker.Backends {
	return docker.Backends{System: d.system, Images: d.images, Containers: d.ctrs, Volumes: d.vols, Networks: d.nets, Build: d.builds}
}

func (d *daemon) close() {
	if d.ctrs != nil {
		d.ctrs.Close()
	}
	if d.nets != nil {
		d.nets.Close()
	}
	if d.images != nil {
		d.images.Close()
	}
	if d.snaps != nil {
		d.snaps.Close()
	}
	if d.db != nil {
		d.db.Close()
	}
}

// inflater is berth-inflate's path when it is installed, else "".
func inflater() string {
	p := binary("berth-inflate")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// binary finds one of berth's programs: next to berthd's own executable
// (bin/ of a build, /usr/local/bin of an install), else in $PATH by name.
func binary(name string) string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}
