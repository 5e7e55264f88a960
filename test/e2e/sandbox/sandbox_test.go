package sandbox

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestSandboxTopology: nodes reach each other and the outside host through
// the router; the router drops the cluster ranges; nothing routes beyond.
func TestSandboxTopology(t *testing.T) {
	s := New(t, Options{Nodes: 2})
	bin := framework.Binary(t)
	s.Start(s.Nodes[0], bin, "netexec", "--http-port", "8080")
	s.Start(s.Outside, bin, "netexec", "--http-port", "8080")
	curl := func(from *Host, url string) (string, error) {
		var out string
		var err error
		for i := 0; i < 50; i++ {
			out, err = s.Exec(from, "curl", "-sS", "--max-time", "2", url)
			if err == nil {
				return out, nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return out, err
	}
	if out, err := curl(s.Nodes[1], "http://"+s.Nodes[0].IP+":8080/clientip"); err != nil || !strings.HasPrefix(out, s.Nodes[1].IP+":") {
		t.Errorf("node 2 to node 1: %q %v", out, err)
	}
	if out, err := curl(s.Nodes[0], "http://"+s.Outside.IP+":8080/clientip"); err != nil || !strings.HasPrefix(out, s.Nodes[0].IP+":") {
		t.Errorf("node 1 to outside (routed, not NATed): %q %v", out, err)
	}
	// An address beyond the sandbox has no route from the router.
	out, err := s.Exec(s.Nodes[0], "curl", "-sS", "--max-time", "2", "http://203.0.113.7/")
	if err == nil {
		t.Errorf("reached beyond the sandbox: %q", out)
	}
	// The router drops the cluster ranges.
	if _, err := s.Exec(s.Router, "ip", "route", "add", "10.244.9.0/24", "via", s.Nodes[0].IP); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Exec(s.Outside, "curl", "-sS", "--max-time", "2", "http://10.244.9.1/"); err == nil {
		t.Errorf("pod range forwarded by the router: %q", out)
	}
	names := s.names
	s.Teardown()
	list, _ := exec.Command("ip", "netns", "list").Output()
	for _, n := range names {
		if strings.Contains(string(list), n) {
			t.Errorf("%s left after teardown", n)
		}
	}
}
