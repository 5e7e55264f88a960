// Command wharf-init is `wharf init` alone: PID 1 of each container (see
// internal/initproc). It links none of Kubernetes, so it starts in about a
// millisecond where the full wharf binary spends ~75 ms in package
// initialisation; the agent uses it when it lies beside the wharf binary
// and falls back to `wharf init` otherwise.
package main

import (
	"fmt"
	"os"

	"github.com/wharf-io/wharf/internal/initproc"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wharf-init STATE-DIR (started by the wharf agent)")
		os.Exit(2)
	}
	os.Exit(initproc.Main(os.Args[1]))
}
