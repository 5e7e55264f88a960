package podroutes

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// forwardComment marks the FORWARD accepts Wharf adds.
const forwardComment = "wharf: pod and service traffic"

// iptablesRunner runs the iptables binary: out is its stdout, and an
// exit status is returned as an *exec.ExitError.
type iptablesRunner func(args ...string) (out string, err error)

// execIPTables runs `iptables -w args...`. The child inherits the calling
// thread's network namespace.
func execIPTables(args ...string) (string, error) {
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// haveIPTables reports whether the iptables binary is installed: without
// it, nothing can have set up an iptables FORWARD policy to work around.
func haveIPTables() bool {
	_, err := exec.LookPath("iptables")
	return err == nil
}

// forwardAccepts are the FORWARD rules letting pod and service traffic
// through: from and to each range.
func forwardAccepts(ranges ...netip.Prefix) [][]string {
	var rules [][]string
	for _, p := range ranges {
		for _, dir := range []string{"-s", "-d"} {
			rules = append(rules, []string{dir, p.String(), "-m", "comment", "--comment", forwardComment, "-j", "ACCEPT"})
		}
	}
	return rules
}

// forwardPolicyDrop reports whether `iptables -S FORWARD` output sets the
// chain's policy to DROP (its first line, "-P FORWARD DROP").
func forwardPolicyDrop(out string) bool {
	s := bufio.NewScanner(strings.NewReader(out))
	return s.Scan() && strings.Join(strings.Fields(s.Text()), " ") == "-P FORWARD DROP"
}

// ensureForward lets pod and service traffic through the iptables filter
// FORWARD chain when its policy is DROP, as Docker sets it. An accept in
// Wharf's own nftables table would not do: every netfilter table hooked
// to forward sees the packet in turn, an accept only ends the table that
// gave it, and a drop (a rule's or a policy's) in any table is final. So
// the accepts go into the chain that drops. The rules are inserted at the
// top, each only if absent (-C before -I), and kept when the agent stops
// (they accept only Wharf's ranges). changed reports whether any was added.
func ensureForward(run iptablesRunner, ranges ...netip.Prefix) (changed bool, err error) {
	out, err := run("-S", "FORWARD")
	if err != nil {
		return false, policyUnreadableError{err}
	}
	if !forwardPolicyDrop(out) {
		return false, nil
	}
	for _, rule := range forwardAccepts(ranges...) {
		_, err := run(append([]string{"-C", "FORWARD"}, rule...)...)
		if err == nil {
			continue
		}
		if !isExitStatus(err, 1) { // 1: no such rule; anything else failed
			return changed, fmt.Errorf("check FORWARD accept: %w", err)
		}
		if _, err := run(append([]string{"-I", "FORWARD"}, rule...)...); err != nil {
			return changed, fmt.Errorf("the iptables FORWARD policy is DROP and adding an accept for pod and service traffic failed: %w", err)
		}
		changed = true
	}
	return changed, nil
}

// removeForward deletes the accepts ensureForward adds (absent ones are
// fine).
func removeForward(run iptablesRunner, ranges ...netip.Prefix) error {
	var errs []error
	for _, rule := range forwardAccepts(ranges...) {
		for {
			_, err := run(append([]string{"-D", "FORWARD"}, rule...)...)
			if err == nil {
				continue // -I may have run twice in a race; remove every copy
			}
			if !isExitStatus(err, 1) {
				errs = append(errs, fmt.Errorf("remove FORWARD accept: %w", err))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// policyUnreadableError is ensureForward's error when iptables cannot list
// FORWARD at all (no iptables support in the kernel, say): then no
// iptables policy can be dropping either, so the caller may go on.
type policyUnreadableError struct{ err error }

func (e policyUnreadableError) Error() string {
	return "read the iptables FORWARD policy: " + e.err.Error()
}

func (e policyUnreadableError) Unwrap() error { return e.err }

func isExitStatus(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}
