// Command wharf is Kubernetes service networking in one binary: the API
// server, the node agent, kubectl and the tools around them. See
// `wharf --help` and README.md.
package main

import (
	"os"

	"github.com/wharf-io/wharf/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
