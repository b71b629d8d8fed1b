// Command berth is the berth command line: docker's image and system
// commands as a client of berthd's Docker Engine API, starting berthd on
// demand. The commands live in package berth.dev/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"berth.dev/cli"
)

var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.New(cli.WithVersion(version, commit)).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
