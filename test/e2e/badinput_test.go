package e2e

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// TestBadInputGetsUpstreamStatus sends what users get wrong and checks the
// status code, reason and message are upstream's, and that nothing is stored.
func TestBadInputGetsUpstreamStatus(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := s.Client()
	rc := client.CoreV1().RESTClient()
	ctx := context.Background()

	post := func(contentType, body string, params ...string) error {
		req := rc.Post().Namespace("default").Resource("configmaps").SetHeader("Content-Type", contentType).Body([]byte(body))
		for i := 0; i+1 < len(params); i += 2 {
			req = req.Param(params[i], params[i+1])
		}
		return req.Do(ctx).Error()
	}

	cases := []struct {
		name        string
		err         error
		check       func(error) bool
		wantMessage string
	}{
		{"malformed JSON", post("application/json", `{"apiVersion":"v1","kind":"ConfigMap",`),
			apierrors.IsBadRequest, ""},
		{"malformed YAML", post("application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n"),
			apierrors.IsBadRequest, ""},
		{"wrong kind for the URL", post("application/json", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`),
			apierrors.IsBadRequest, ""},
		{"invalid name", post("application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}`),
			apierrors.IsInvalid, `ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of`},
		{"unknown field, Strict", post("application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"bogus":1}`, "fieldValidation", "Strict"),
			apierrors.IsBadRequest, `strict decoding error: unknown field "bogus"`},
		{"10 MiB body", post("application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"`+strings.Repeat("x", 10<<20)+`"}}`),
			apierrors.IsRequestEntityTooLargeError, ""},
		{"namespace that does not exist", rc.Post().Namespace("nowhere").Resource("configmaps").SetHeader("Content-Type", "application/json").
			Body([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`)).Do(ctx).Error(),
			apierrors.IsNotFound, `namespaces "nowhere" not found`},
	}
	for _, c := range cases {
		if c.err == nil || !c.check(c.err) {
			t.Errorf("%s: got %v (%T)", c.name, c.err, c.err)
			continue
		}
		if c.wantMessage != "" && !strings.Contains(c.err.Error(), c.wantMessage) {
			t.Errorf("%s: message %q lacks %q", c.name, c.err.Error(), c.wantMessage)
		}
	}
	// Nothing of it was stored.
	list, err := client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range list.Items {
		if cm.Name != "kube-root-ca.crt" {
			t.Errorf("stored despite the error: %s", cm.Name)
		}
	}

	// Without credentials: 401, as kube-apiserver with anonymous auth off;
	// the health endpoints stay open.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for path, want := range map[string]int{"/api/v1/namespaces/default/pods": 401, "/readyz": 200, "/version": 200} {
		resp, err := anon.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
