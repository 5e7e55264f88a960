// Package cli is Wharf's command table: one file per subcommand, each turning
// flags into a role's Config and calling its Run. Only this package (and
// cmd/wharf) imports kubectl and the etcd server, so every other package's
// tests link quickly.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// DefaultDataDir is where Wharf keeps its state unless --data-dir or
// WHARF_DATA_DIR says otherwise.
const DefaultDataDir = "/var/lib/wharf"

// Main runs the wharf command with args and returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "kubectl" {
		return runKubectl(args[1:])
	}
	root := newRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf",
		Short:         "Kubernetes service networking in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServerCommand(), newUpCommand(), newKubectlCommand(), newNetexecCommand(), newAgentCommand(), newInitCommand())
	return root
}

// dataDir resolves the data directory: the flag, else WHARF_DATA_DIR, else
// the default.
func dataDir(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("WHARF_DATA_DIR"); env != "" {
		return env
	}
	return DefaultDataDir
}

func kubeconfigPath(dir string) string { return filepath.Join(dir, "admin.kubeconfig") }

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wharf: "+format+"\n", args...)
}
