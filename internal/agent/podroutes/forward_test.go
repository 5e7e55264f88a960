package podroutes

import (
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeIPTables is a FORWARD chain in memory answering -S, -C, -I and -D
// with iptables' exit statuses.
type fakeIPTables struct {
	policy string
	rules  []string // "-s 10.244.0.0/16 -m comment ..." in order
	calls  []string
	failS  bool
}

// exitErr makes an *exec.ExitError with the given status.
func exitErr(t *testing.T, code int) error {
	t.Helper()
	err := exec.Command("sh", "-c", "exit "+strconv.Itoa(code)).Run()
	if err == nil {
		t.Fatal("sh exit did not fail")
	}
	return err
}

func (f *fakeIPTables) runner(t *testing.T) iptablesRunner {
	return func(args ...string) (string, error) {
		f.calls = append(f.calls, strings.Join(args, " "))
		rule := strings.Join(args[min(2, len(args)):], " ")
		switch args[0] {
		case "-S":
			if f.failS {
				return "", exitErr(t, 3)
			}
			return "-P FORWARD " + f.policy + "\n-A FORWARD -j DOCKER-USER\n", nil
		case "-C":
			if slices.Contains(f.rules, rule) {
				return "", nil
			}
			return "", exitErr(t, 1)
		case "-I":
			f.rules = append([]string{rule}, f.rules...)
			return "", nil
		case "-D":
			if i := slices.Index(f.rules, rule); i >= 0 {
				f.rules = slices.Delete(f.rules, i, i+1)
				return "", nil
			}
			return "", exitErr(t, 1)
		}
		return "", errors.New("unexpected iptables call " + strings.Join(args, " "))
	}
}

var fwRanges = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12")}

func TestForwardAcceptsOnlyWhenPolicyDrop(t *testing.T) {
	f := &fakeIPTables{policy: "ACCEPT"}
	changed, err := ensureForward(f.runner(t), fwRanges...)
	if err != nil || changed || len(f.rules) != 0 {
		t.Fatalf("policy ACCEPT: changed=%v err=%v rules=%v, want no change", changed, err, f.rules)
	}
	f.policy = "DROP"
	changed, err = ensureForward(f.runner(t), fwRanges...)
	if err != nil || !changed {
		t.Fatalf("policy DROP: changed=%v err=%v, want a change", changed, err)
	}
	c := ` -m comment --comment ` + forwardComment + ` -j ACCEPT`
	want := []string{"-d 10.96.0.0/12" + c, "-s 10.96.0.0/12" + c, "-d 10.244.0.0/16" + c, "-s 10.244.0.0/16" + c}
	if !slices.Equal(f.rules, want) {
		t.Errorf("rules = %q, want %q", f.rules, want)
	}
	changed, err = ensureForward(f.runner(t), fwRanges...)
	if err != nil || changed || len(f.rules) != 4 {
		t.Errorf("second ensure: changed=%v err=%v rules=%d, want idempotent", changed, err, len(f.rules))
	}
	if err := removeForward(f.runner(t), fwRanges...); err != nil || len(f.rules) != 0 {
		t.Errorf("remove: err=%v rules=%v", err, f.rules)
	}
	if err := removeForward(f.runner(t), fwRanges...); err != nil {
		t.Errorf("remove when absent: %v", err)
	}
}

func TestForwardPolicyUnreadable(t *testing.T) {
	f := &fakeIPTables{failS: true}
	_, err := ensureForward(f.runner(t), fwRanges...)
	if !errors.As(err, &policyUnreadableError{}) {
		t.Errorf("err = %v, want a policyUnreadableError", err)
	}
}

func TestForwardPolicyDropParse(t *testing.T) {
	for out, want := range map[string]bool{
		"-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n": true,
		"-P FORWARD ACCEPT\n":                          false,
		"-N DOCKER\n-P FORWARD DROP\n":                 false, // the policy is always the first line
		"":                                             false,
	} {
		if got := forwardPolicyDrop(out); got != want {
			t.Errorf("forwardPolicyDrop(%q) = %v, want %v", out, got, want)
		}
	}
}
