package images

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolveBuiltinAndAdminEntries(t *testing.T) {
	dir := t.TempDir()
	admin := "- names: [example.com/team/app]\n  entrypoint: [/bin/true]\n"
	if err := os.WriteFile(filepath.Join(dir, "team.yaml"), []byte(admin), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"jonbaier/node-express-info:latest":            {"node", "/app/server.js"},
		"docker.io/jonbaier/node-express-info":         {"node", "/app/server.js"},
		"docker.io/library/busybox:1.36":               {"sh"},
		"busybox@sha256:" + strings.Repeat("a", 64):    {"sh"},
		"example.com/team/app:v2":                      {"/bin/true"},
		"registry.k8s.io/e2e-test-images/agnhost:2.52": {"/.wharf/bin/wharf"},
	}
	for image, want := range cases {
		e, err := tab.Resolve(image)
		if err != nil {
			t.Errorf("%s: %v", image, err)
			continue
		}
		if got := Argv(e, nil, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: argv %q, want %q", image, got, want)
		}
	}
	if _, err := tab.Resolve("nosuch/image:1"); err == nil || !strings.Contains(err.Error(), `image "nosuch/image:1" not found`) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := tab.Resolve("UPPER/case"); err == nil {
		t.Error("invalid reference accepted")
	}
	e, _ := tab.Resolve("jonbaier/httpwhalesay:0.1")
	if _, err := os.Stat(filepath.Join(e.FilesDir, "index.js")); err != nil {
		t.Errorf("whalesay files not extracted: %v", err)
	}
}

func TestArgvUpstreamRules(t *testing.T) {
	e := Entry{Entrypoint: []string{"ep"}, Cmd: []string{"c1", "c2"}}
	cases := []struct {
		cmd, args, want []string
	}{
		{nil, nil, []string{"ep", "c1", "c2"}},
		{[]string{"x"}, nil, []string{"x"}},
		{nil, []string{"a"}, []string{"ep", "a"}},
		{[]string{"x"}, []string{"a"}, []string{"x", "a"}},
	}
	for _, c := range cases {
		if got := Argv(e, c.cmd, c.args); !reflect.DeepEqual(got, c.want) {
			t.Errorf("command %q args %q: %q, want %q", c.cmd, c.args, got, c.want)
		}
	}
}

func TestBadAdminTable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("- names: [x]\n  entrypont: [y]\n"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("unknown field: %v", err)
	}
}
