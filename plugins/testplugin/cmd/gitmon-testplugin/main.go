// Command gitmon-testplugin serves testplugin.Runner as a gitmon plugin.
package main

import (
	"github.com/gitmon-dev/gitmon/plugins"
	"github.com/gitmon-dev/gitmon/plugins/testplugin"
)

func main() { plugins.Serve(testplugin.Runner{}) }
