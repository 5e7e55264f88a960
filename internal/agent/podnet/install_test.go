package podnet

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestInstallPluginsCopiesOnlyWhatChanged(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "bin")
	for name, content := range map[string]string{"bridge": "v1", "portmap": "v1"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(src, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}

	got, err := installPlugins(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bridge", "portmap"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first install copied %v, want %v", got, want)
	}
	st, err := os.Stat(filepath.Join(dst, "bridge"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed bridge: %v, mode %v; want 0755", err, st.Mode())
	}

	if got, err := installPlugins(src, dst); err != nil || len(got) != 0 {
		t.Fatalf("second install copied %v (err %v), want nothing", got, err)
	}

	if err := os.WriteFile(filepath.Join(src, "portmap"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := installPlugins(src, dst); err != nil || !reflect.DeepEqual(got, []string{"portmap"}) {
		t.Fatalf("after portmap changed, copied %v (err %v), want [portmap]", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "portmap")); string(b) != "v2" {
		t.Errorf("installed portmap = %q, want v2", b)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 2 {
		t.Errorf("dst holds %d entries, want 2 (no temporary files left)", len(entries))
	}
}

func TestInstallPluginsMissingSource(t *testing.T) {
	got, err := installPlugins(filepath.Join(t.TempDir(), "none"), t.TempDir())
	if err != nil || got != nil {
		t.Fatalf("installPlugins(missing) = %v, %v; want nothing, no error", got, err)
	}
}

func TestPluginSourceDefault(t *testing.T) {
	t.Setenv(PluginSourceEnv, "")
	cfg, err := Config{DataDir: "/d"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if want := filepath.Join(filepath.Dir(exe), "cni"); cfg.PluginSource != want {
		t.Errorf("default PluginSource = %q, want %q", cfg.PluginSource, want)
	}
	t.Setenv(PluginSourceEnv, "/opt/cni")
	if cfg, _ := (Config{DataDir: "/d"}).withDefaults(); cfg.PluginSource != "/opt/cni" {
		t.Errorf("with %s set, PluginSource = %q", PluginSourceEnv, cfg.PluginSource)
	}
	if cfg, _ := (Config{DataDir: "/d", PluginSource: "/x"}).withDefaults(); cfg.PluginSource != "/x" {
		t.Errorf("explicit PluginSource overridden: %q", cfg.PluginSource)
	}
	if want := []string{"/d/cni/bin", "/opt/extra"}; !reflect.DeepEqual((Config{DataDir: "/d", BinDirs: []string{"/opt/extra"}}).pluginPath(), want) {
		t.Errorf("plugin path does not search <DataDir>/cni/bin first")
	}
	if _, err := (Config{}).withDefaults(); err == nil {
		t.Error("empty DataDir accepted")
	}
}
