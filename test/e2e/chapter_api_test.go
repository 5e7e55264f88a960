// Package e2e runs Wharf as a user would: real processes, real kubectl.
package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// chapterFiles returns the chapter's listings (and the chapter 2 objects
// they lean on) in the order a reader creates them, with listing 3-11's
// <X.X.X.X> filled in by an address from TEST-NET-1 (never contacted here).
func chapterFiles(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "chapter3")
	pre, _ := filepath.Glob(filepath.Join(dir, "00-prereqs", "*.yaml"))
	listings, _ := filepath.Glob(filepath.Join(dir, "listing-*.yaml"))
	sort.Strings(pre)
	sort.Strings(listings)
	if len(listings) != 16 {
		t.Fatalf("want the chapter's 16 listings, found %d", len(listings))
	}
	tmp := t.TempDir()
	var out []string
	for _, f := range append(pre, listings...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "<X.X.X.X>", "192.0.2.10")
		p := filepath.Join(tmp, filepath.Base(f))
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestChapterListingsThroughKubectl(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	files := chapterFiles(t)

	for _, f := range files {
		out := s.MustKubectl("create", "-f", f)
		if !strings.Contains(out, "created") {
			t.Errorf("create %s: %s", filepath.Base(f), out)
		}
	}
	// Creating again is refused with upstream's AlreadyExists.
	out, err := s.Kubectl("create", "-f", files[0])
	if err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("second create: want AlreadyExists, got %v: %s", err, out)
	}
	// kubectl apply over objects made by create: configured or unchanged, never an error.
	for _, f := range files {
		out := s.MustKubectl("apply", "-f", f)
		if strings.Contains(out, "error") {
			t.Errorf("apply %s: %s", filepath.Base(f), out)
		}
	}

	out = s.MustKubectl("get", "services", "-l", "name=node-js-internal")
	wantColumns(t, out, "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
	if !regexp.MustCompile(`(?m)^node-js-internal\s+ClusterIP\s`).MatchString(out) {
		t.Errorf("get services -l name=node-js-internal:\n%s", out)
	}
	if strings.Contains(out, "node-js-nodeport") {
		t.Errorf("label selector not applied:\n%s", out)
	}

	out = s.MustKubectl("get", "svc", "-o", "wide")
	wantColumns(t, out, "SELECTOR")
	for _, want := range []string{`node-js-nodeport\s+NodePort\s+\S+\s+<none>\s+80:30001/TCP`,
		`whale-svc-a\s+NodePort\s+\S+\s+<none>\s+80:30301/TCP`, `node-js-none\s+ClusterIP\s+None`,
		`node-js-multi\s+LoadBalancer\s+\S+\s+\S+\s+80:3\d{4}/TCP,8888:3\d{4}/TCP`, `node-js-90\s+LoadBalancer\s+\S+\s+\S+\s+90:3\d{4}/TCP`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("get svc -o wide: no row matching %q:\n%s", want, out)
		}
	}

	out = s.MustKubectl("get", "endpoints")
	wantColumns(t, out, "NAME", "ENDPOINTS", "AGE")
	if !regexp.MustCompile(`custom-service\s+192\.0\.2\.10:80`).MatchString(out) {
		t.Errorf("get endpoints:\n%s", out)
	}

	out = s.MustKubectl("get", "ingress")
	wantColumns(t, out, "NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE")
	if !strings.Contains(out, "a.whale.hey,b.whale.hey") {
		t.Errorf("get ingress:\n%s", out)
	}
	// Listing 3-9 was written as extensions/v1beta1 and reads back as v1.
	out = s.MustKubectl("get", "ingresses.networking.k8s.io", "whale-ingress", "-o", "yaml")
	for _, want := range []string{"apiVersion: networking.k8s.io/v1", "name: whale-svc-a", "number: 80", "pathType: ImplementationSpecific"} {
		if !strings.Contains(out, want) {
			t.Errorf("ingress as v1 lacks %q:\n%s", want, out)
		}
	}

	out = s.MustKubectl("get", "rc", "-o", "wide")
	wantColumns(t, out, "NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR")
	// Listing 3-7 has no selector: it is defaulted from the template.
	if !regexp.MustCompile(`whale-ingress-a\s+1\s+.*app=whale-ingress-a`).MatchString(out) {
		t.Errorf("get rc -o wide:\n%s", out)
	}

	out = s.MustKubectl("get", "pods", "--namespace=test")
	wantColumns(t, out, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
	if !regexp.MustCompile(`utility\s+0/1\s+Pending`).MatchString(out) {
		t.Errorf("get pods --namespace=test:\n%s", out)
	}

	out = s.MustKubectl("get", "quota", "--namespace=test")
	wantColumns(t, out, "NAME", "AGE", "REQUEST", "LIMIT")

	out = s.MustKubectl("describe", "service/custom-service")
	for _, want := range []string{"Name:", "custom-service", "Namespace:", "default", "Type:", "LoadBalancer", "Port:", "http  80/TCP", "Session Affinity:", "None"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe service lacks %q:\n%s", want, out)
		}
	}
	out = s.MustKubectl("describe", "namespace/test")
	for _, want := range []string{"Name:", "test", "Status:", "Active", "test-quotas"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe namespace lacks %q:\n%s", want, out)
		}
	}

	// The context's namespace, as the chapter changes it (C26).
	s.MustKubectl("config", "set-context", "--current", "--namespace=test")
	out = s.MustKubectl("get", "pods")
	if !strings.Contains(out, "utility") {
		t.Errorf("after set-context --namespace=test, get pods:\n%s", out)
	}
	s.MustKubectl("config", "set-context", "--current", "--namespace=default")

	// Delete everything, in reverse; a deleted object is gone.
	for i := len(files) - 1; i >= 0; i-- {
		if strings.HasSuffix(files[i], "test-ns.yaml") {
			continue
		}
		out := s.MustKubectl("delete", "-f", files[i], "--wait=false", "--grace-period=0", "--force")
		if !strings.Contains(out, "deleted") {
			t.Errorf("delete %s: %s", filepath.Base(files[i]), out)
		}
	}
	out, err = s.Kubectl("get", "svc", "node-js-internal")
	if err == nil || !strings.Contains(out, `services "node-js-internal" not found`) {
		t.Errorf("get deleted service: %v %s", err, out)
	}
}

// wantColumns checks the header line of kubectl's table output.
func wantColumns(t *testing.T, out string, cols ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := ""
	for _, l := range lines {
		if strings.HasPrefix(l, "NAME") || strings.HasPrefix(l, "NAMESPACE") {
			header = l
			break
		}
	}
	for _, c := range cols {
		if !strings.Contains(header, c) {
			t.Errorf("header %q lacks column %s\n%s", header, c, out)
		}
	}
}
