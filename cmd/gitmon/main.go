// Command gitmon watches environment branches of a GitOps repository and
// turns each commit into a policy-checked, recorded release.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitmon-dev/gitmon/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Streams{Out: os.Stdout, Err: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}
