package cli

import (
	"github.com/spf13/cobra"

	"github.com/wharf-io/wharf/internal/netexec"
)

// newNetexecCommand is `wharf netexec`: the test and demo server.
func newNetexecCommand() *cobra.Command {
	var c netexec.Config
	cmd := &cobra.Command{
		Use:   "netexec",
		Short: "Serve HTTP (and UDP echo) saying who answered and who asked: a test and demo server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return netexec.Run(ctx, c)
		},
	}
	cmd.Flags().IntSliceVar(&c.HTTPPorts, "http-port", []int{8080}, "ports to serve HTTP on")
	cmd.Flags().IntVar(&c.UDPPort, "udp-port", 0, "port to echo UDP on (0: none)")
	cmd.Flags().StringVar(&c.Message, "message", "", "text to show first on /")
	return cmd
}
