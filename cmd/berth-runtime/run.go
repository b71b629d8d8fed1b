package main

import (
	"errors"
	"os"

	"berth.dev/runtime"
	"berth.dev/runtime/spec"
)

func runRun(g *globals, args []string) error {
	fs := newFlags("run", "<container-id>")
	var f createFlags
	f.register(fs)
	detach := fs.Bool("detach", false, "detach from the container's process")
	fs.BoolVar(detach, "d", false, "detach from the container's process")
	keep := fs.Bool("keep", false, "do not delete the container after it exits (only without --detach)")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	o := f.options(g, pos[0])
	if *detach {
		c, err := runtime.Create(o)
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			c.Delete(true)
			return err
		}
		return nil
	}
	sig := catchSignals()
	s, err := spec.Load(f.bundle)
	if err != nil {
		return err
	}
	o.Spec = s
	terminal := s.Process != nil && s.Process.Terminal && f.consoleSocket == ""
	fg, err := newForeground(terminal, sig)
	if err != nil {
		return err
	}
	var c *runtime.Container
	err = fg.launch(func(console *os.File) error {
		o.ConsoleConn = console
		var err error
		c, err = runtime.Create(o)
		return err
	})
	if err != nil {
		if c != nil {
			c.Delete(true)
		}
		return err
	}
	if err := c.Start(); err != nil {
		fg.close()
		c.Delete(true)
		return err
	}
	status := fg.wait(c.Pid())
	if *keep {
		return exitError(status)
	}
	if err := c.Delete(true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		g.log.warnf("delete container: %v", err)
	}
	return exitError(status)
}
