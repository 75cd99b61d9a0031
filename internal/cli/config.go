package cli

import (
	"context"
	"fmt"

	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/spf13/cobra"
)

func configCommand(s Streams) *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "config",
		Short: "print the effective config, every default applied, secrets as <secret>",
		Long: `Prints the effective config: every default applied, paths made absolute,
secrets as <secret>. Exit 1 when the config is invalid.`,
		Example: `  gitmon config --config /etc/gitmon/gitmon.yaml
  GITMON_CONFIG=/etc/gitmon/gitmon.yaml gitmon config`,
		Args: noArgs,
		RunE: runs(func(context.Context, []string) int {
			cfg, ok := cf.load(s, config.ModeValidate)
			if !ok {
				return ExitInvalid
			}
			fmt.Fprint(s.Out, cfg.String())
			return ExitOK
		}),
	}
	cf.register(c)
	return c
}
