package cli

import (
	"github.com/spf13/cobra"
)

// newUpCommand is `wharf up`: everything on one machine. For now that is the
// API server with embedded etcd; the node agent joins it in the same process
// once it exists.
func newUpCommand() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine (server and embedded etcd)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return o.run(ctx)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}
