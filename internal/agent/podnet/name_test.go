package podnet

import (
	"strings"
	"testing"
)

func TestNetnsName(t *testing.T) {
	long := strings.Repeat("n", 253)
	ns63 := strings.Repeat("s", 63)
	tests := []struct {
		name   string
		prefix string
		pod    PodRef
		want   string
	}{
		{"parts joined by underscore, uid cut to 8", "wharf-",
			PodRef{"default", "web-0", "3f2a9c1e-7b7d-4d6e-9a51-0c2d7e9f1a22"},
			"wharf-default_web-0_3f2a9c1e"},
		{"short uid kept whole", "wharf-", PodRef{"kube-system", "dns", "abc"}, "wharf-kube-system_dns_abc"},
		{"other prefix", "t-", PodRef{"a", "b", "12345678"}, "t-a_b_12345678"},
		{"long pod name shortened to the limit", "wharf-",
			PodRef{ns63, long, "0123456789"},
			"wharf-" + ns63 + "_" + long[:MaxNetnsName-len("wharf-")-63-8-2] + "_01234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NetnsName(tt.prefix, tt.pod)
			if got != tt.want {
				t.Errorf("NetnsName(%q, %+v) = %q, want %q", tt.prefix, tt.pod, got, tt.want)
			}
			if len(got) > MaxNetnsName {
				t.Errorf("len = %d, want <= %d", len(got), MaxNetnsName)
			}
		})
	}
}

func TestNetnsNameDistinguishesIncarnations(t *testing.T) {
	a := NetnsName("wharf-", PodRef{"default", "web", "aaaaaaaa-1"})
	b := NetnsName("wharf-", PodRef{"default", "web", "bbbbbbbb-1"})
	if a == b {
		t.Fatalf("two UIDs of one pod name share netns name %q", a)
	}
}
