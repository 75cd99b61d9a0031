package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/gitmon-dev/gitmon/internal/buildinfo"
	"github.com/spf13/cobra"
)

func versionCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, commit and build date",
		Long: `Prints one line: the version, the commit it was built from, the build date,
and the Go toolchain and platform. gitmon --version prints the same.`,
		Example: `  gitmon version
  gitmon v1.2.3 commit 0123456789abcdef0123456789abcdef01234567 built 2026-12-01T08:00:00Z (go1.26.0, linux/amd64)`,
		Args: noArgs,
		RunE: runs(func(context.Context, []string) int { return printVersion(s) }),
	}
}

// printVersion prints the version line (SPEC §6).
func printVersion(s Streams) int {
	bi := buildinfo.Get()
	fmt.Fprintf(s.Out, "gitmon %s commit %s built %s (%s, %s/%s)\n", bi.Version, bi.Commit, bi.Date, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
