// Command gen writes the hostile descriptors of package hostile into a
// folder, for scripts/hostile-timing.sh.
package main

import (
	"fmt"
	"os"

	"github.com/gitmon-dev/gitmon/test/hostile"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen DIR")
		os.Exit(2)
	}
	paths, err := hostile.Write(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}
