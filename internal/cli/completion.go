package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// shells are the shells completionCommand writes scripts for.
var shells = []string{"bash", "zsh", "fish"}

func completionCommand(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print a shell completion script",
		Long: `Prints the completion script of a shell: commands, flags, and the
environments of the config for --env. Load it in the shell's startup file.`,
		Example: `  source <(gitmon completion bash)                    # in ~/.bashrc
  gitmon completion zsh > "${fpath[1]}/_gitmon"       # then start a new shell
  gitmon completion fish > ~/.config/fish/completions/gitmon.fish`,
		ValidArgs: shells,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(shells, args[0]) {
				return fmt.Errorf("want one shell: %s; got %q", strings.Join(shells, ", "), strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(s.Out, true)
			case "zsh":
				err = root.GenZshCompletion(s.Out)
			case "fish":
				err = root.GenFishCompletion(s.Out, true)
			}
			if err != nil {
				fmt.Fprintf(s.Err, "gitmon completion: %v\n", err)
				return exitCode(ExitUsage)
			}
			return nil
		},
	}
}
