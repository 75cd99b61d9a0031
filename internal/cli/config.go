package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/gitmon-dev/gitmon/internal/config"
)

// runConfig prints the effective config (SPEC §6): every default
// applied, paths made absolute, secrets as <secret>. Exit 1 when the
// config is invalid.
func runConfig(_ context.Context, s Streams, args []string) int {
	fl := flag.NewFlagSet("config", flag.ContinueOnError)
	fl.SetOutput(s.Err)
	cfgPath := fl.String("config", DefaultConfig, "config file")
	fl.Usage = func() {
		fmt.Fprintln(s.Err, "usage: gitmon config [--config F]")
		fmt.Fprintln(s.Err, "  prints the effective config: every default applied, secrets as <secret>; exit 1 when it is invalid.")
		fmt.Fprintln(s.Err, "example:")
		fmt.Fprintln(s.Err, "  gitmon config --config /etc/gitmon/gitmon.yaml")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fl.Usage()
		return ExitUsage
	}
	cfg, ok := loadConfig(s, *cfgPath, config.ModeValidate)
	if !ok {
		return ExitInvalid
	}
	fmt.Fprint(s.Out, cfg.String())
	return ExitOK
}
