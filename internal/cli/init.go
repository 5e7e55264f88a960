package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/wharf-io/wharf/internal/initproc"
)

// newInitCommand is `wharf init <state-dir>`: a container's PID 1, started
// by the node agent's container runtime, never by hand.
func newInitCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "init STATE-DIR",
		Short:  "Run as a container's init process (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		// Flags after the state directory are not ours: keep cobra out.
		DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			os.Exit(initproc.Main(args[0]))
		},
	}
}
