package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestServiceAccountTokens: every namespace gets a default ServiceAccount
// and kube-root-ca.crt; `kubectl create token` issues a token that
// authenticates as the account; pods default to the account.
func TestServiceAccountTokens(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	ctx := context.Background()
	s.MustKubectl("create", "namespace", "apps")
	waitFor(t, 30*time.Second, func() (bool, string) {
		_, err1 := client.CoreV1().ServiceAccounts("apps").Get(ctx, "default", metav1.GetOptions{})
		cm, err2 := client.CoreV1().ConfigMaps("apps").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err1 == nil && err2 == nil && strings.Contains(cm.Data["ca.crt"], "BEGIN CERTIFICATE"), "waiting for defaults"
	})
	token := strings.TrimSpace(s.MustKubectl("create", "token", "default", "-n", "apps", "--duration=15m"))
	// A kubeconfig with only the token (the admin's would win with its
	// client certificate, as upstream's authenticator order has it).
	as := func(tok string) string {
		kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority: %s\n"+
			"users:\n- name: u\n  user:\n    token: %s\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
			s.URL(), filepath.Join(s.DataDir, "tls", "ca.crt"), tok)
		return writeTemp(t, kc)
	}
	out := s.MustKubectl("--kubeconfig", as(token), "auth", "whoami")
	for _, want := range []string{"system:serviceaccount:apps:default", "system:serviceaccounts:apps"} {
		if !strings.Contains(out, want) {
			t.Errorf("whoami with the token lacks %q:\n%s", want, out)
		}
	}
	out, err := s.Kubectl("--kubeconfig", as(token), "get", "pods", "-n", "apps")
	if err == nil || !strings.Contains(out, `User "system:serviceaccount:apps:default" cannot list resource "pods"`) {
		t.Errorf("an unbound service account listing pods: %v %s", err, out)
	}
	out, err = s.Kubectl("--kubeconfig", as(token+"x"), "get", "pods")
	if err == nil || !strings.Contains(out, "Unauthorized") {
		t.Errorf("tampered token: %v %s", err, out)
	}
	p, err := client.CoreV1().Pods("apps").Create(ctx, pod("sa"), metav1.CreateOptions{})
	if err != nil || p.Spec.ServiceAccountName != "default" {
		t.Errorf("pod service account: %v %v", p.Spec.ServiceAccountName, err)
	}
}
