package main

import (
	"berth.dev/runtime"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (f *createFlags) register(fs flagSet) {
	fs.StringVar(&f.bundle, "bundle", ".", "path to the root of the bundle directory")
	fs.StringVar(&f.bundle, "b", ".", "path to the root of the bundle directory")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal")
	fs.StringVar(&f.pidFile, "pid-file", "", "specify the file to write the process id to")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot root to jail process inside rootfs")
	fs.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring for the container")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)")
}

func (f *createFlags) options(g *globals, id string) runtime.CreateOptions {
	return runtime.CreateOptions{
		Root:          g.root,
		ID:            id,
		Bundle:        f.bundle,
		ConsoleSocket: f.consoleSocket,
		PidFile:       f.pidFile,
		NoPivot:       f.noPivot,
		NoNewKeyring:  f.noNewKeyring,
		PreserveFDs:   f.preserveFDs,
		Rootless:      g.isRootless(),
	}
}

func runCreate(g *globals, args []string) error {
	fs := newFlags("create", "<container-id>")
	var f createFlags
	f.register(fs)
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	_, err = runtime.Create(f.options(g, pos[0]))
	return err
}
