package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// newKubectlCommand is only for `wharf --help`: Main hands `wharf kubectl`
// to runKubectl before cobra parses anything, so kubectl sees its own flags.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run kubectl against this cluster (admin kubeconfig of --data-dir or WHARF_DATA_DIR)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			os.Exit(runKubectl(args))
			return nil
		},
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runKubectl runs the real kubectl with args. Unless the user names a
// kubeconfig (KUBECONFIG or --kubeconfig), it uses the admin kubeconfig in
// the data dir; a leading --data-dir=DIR picks which.
func runKubectl(args []string) int {
	dir := ""
	if len(args) > 0 && strings.HasPrefix(args[0], "--data-dir=") {
		dir = strings.TrimPrefix(args[0], "--data-dir=")
		args = args[1:]
	} else if len(args) > 1 && args[0] == "--data-dir" {
		dir, args = args[1], args[2:]
	}
	if os.Getenv("KUBECONFIG") == "" && !namesKubeconfig(args) {
		// Where there is no admin kubeconfig (a pod, a machine that only
		// runs an agent), kubectl's own rules apply: ~/.kube/config, then
		// the in-cluster service account.
		if p := kubeconfigPath(dataDir(dir)); fileExists(p) {
			_ = os.Setenv("KUBECONFIG", p)
		}
	}
	cmd := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().WithDiscoveryBurst(300).WithDiscoveryQPS(50.0),
		IOStreams:     genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
	})
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		cmdutil.CheckErr(err)
		return 1
	}
	return 0
}

func namesKubeconfig(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || strings.HasPrefix(a, "--kubeconfig=") {
			return true
		}
	}
	return false
}
