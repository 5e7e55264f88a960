package satoken

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/wharf-io/wharf/internal/pki"
)

func TestIssueVerifyAndAuthenticate(t *testing.T) {
	keyPEM, err := pki.NewSigningKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claim := KubernetesClaim{Namespace: "default", ServiceAccount: Ref{Name: "default", UID: "sa-1"}, Pod: &Ref{Name: "p", UID: "pod-1"}}
	tok, exp, err := s.Issue(claim, nil, time.Hour, now)
	if err != nil || !exp.After(now) {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset(
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "default", UID: "sa-1"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "pod-1"}})
	a := &Authenticator{Signer: s, Client: func() kubernetes.Interface { return client }}
	resp, ok, err := a.AuthenticateToken(context.Background(), tok)
	if err != nil || !ok || resp.User.GetName() != "system:serviceaccount:default:default" {
		t.Fatalf("authenticate: %v %v %v", resp, ok, err)
	}
	// Tampered, foreign and expired tokens.
	if _, ok, _ := a.AuthenticateToken(context.Background(), tok[:len(tok)-4]+"AAAA"); ok {
		t.Error("tampered token accepted")
	}
	if _, ok, err := a.AuthenticateToken(context.Background(), "opaque-token"); ok || err != nil {
		t.Errorf("foreign token: %v %v", ok, err)
	}
	old, _, _ := s.Issue(claim, nil, time.Minute, now.Add(-time.Hour))
	if _, ok, err := a.AuthenticateToken(context.Background(), old); ok || err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v %v", ok, err)
	}
	// The pod it is bound to is gone.
	_ = client.CoreV1().Pods("default").Delete(context.Background(), "p", metav1.DeleteOptions{})
	if _, ok, _ := a.AuthenticateToken(context.Background(), tok); ok {
		t.Error("token of a deleted pod accepted")
	}
}
