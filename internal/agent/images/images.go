// Package images resolves container image names through Wharf's image
// table. Wharf runs no image layers: an image is an entry of data (an
// entrypoint, a cmd, a working directory, environment and a directory of
// files) and a container runs the host's binaries with that directory
// mounted. The table ships with the entries the chapter's listings use;
// an admin extends it with *.yaml files in <data-dir>/images/ (their files
// in <data-dir>/images/files/<files>), never with code.
package images

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"sigs.k8s.io/yaml"
)

//go:embed table/*.yaml
var builtinTable embed.FS

//go:embed files
var builtinFiles embed.FS

// Entry is one image of the table.
type Entry struct {
	// Names are the repositories this entry serves, in Docker's familiar
	// form (busybox, jonbaier/node-express-info, registry.k8s.io/x/y); any
	// tag or digest matches.
	Names []string `json:"names"`
	// Entrypoint and Cmd are the image's ENTRYPOINT and CMD.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// WorkingDir is the image's WORKDIR, where Files is mounted.
	WorkingDir string `json:"workingDir,omitempty"`
	// Env is the image's ENV (KEY=VALUE), under the container's own env.
	Env []string `json:"env,omitempty"`
	// Files names the directory of files under files/ mounted at
	// WorkingDir; empty for images of host tools only.
	Files string `json:"files,omitempty"`
	// FilesDir is the host directory of Files, set by the Table.
	FilesDir string `json:"-"`
}

// Table is the loaded image table.
type Table struct {
	byName map[string]Entry
	dir    string
}

// Load reads the built-in table and the admin's entries in dir (the data
// dir's images/), extracting the built-in files under dir/files. An
// admin's entry overrides a built-in one of the same name.
func Load(dir string) (*Table, error) {
	t := &Table{byName: map[string]Entry{}, dir: dir}
	if err := extract(filepath.Join(dir, "files")); err != nil {
		return nil, fmt.Errorf("image files: %w", err)
	}
	builtin, _ := fs.Glob(builtinTable, "table/*.yaml")
	for _, name := range builtin {
		data, _ := builtinTable.ReadFile(name)
		if err := t.add(name, data); err != nil {
			return nil, err
		}
	}
	own, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	sort.Strings(own)
	for _, name := range own {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if err := t.add(name, data); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Table) add(file string, data []byte) error {
	var entries []Entry
	if err := yaml.UnmarshalStrict(data, &entries); err != nil {
		return fmt.Errorf("image table %s: %w", file, err)
	}
	for i, e := range entries {
		if len(e.Names) == 0 {
			return fmt.Errorf("image table %s: entry %d has no names", file, i)
		}
		if e.Files != "" {
			e.FilesDir = filepath.Join(t.dir, "files", filepath.Clean("/"+e.Files))
			if e.WorkingDir == "" {
				return fmt.Errorf("image table %s: entry %q has files but no workingDir", file, e.Names[0])
			}
		}
		for _, n := range e.Names {
			key, err := Repository(n)
			if err != nil {
				return fmt.Errorf("image table %s: %w", file, err)
			}
			t.byName[key] = e
		}
	}
	return nil
}

// Repository is an image reference's repository in familiar form, without
// tag or digest: "docker.io/library/busybox:1.36" is "busybox".
func Repository(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", image, err)
	}
	return reference.FamiliarName(named), nil
}

// NotFoundError is an image the table has no entry for.
type NotFoundError struct{ Image string }

func (e NotFoundError) Error() string {
	return fmt.Sprintf("image %q not found in the image table (add an entry in the data dir's images/)", e.Image)
}

// Resolve finds image's entry.
func (t *Table) Resolve(image string) (Entry, error) {
	repo, err := Repository(image)
	if err != nil {
		return Entry{}, err
	}
	e, ok := t.byName[repo]
	if !ok {
		return Entry{}, NotFoundError{Image: image}
	}
	return e, nil
}

// Argv is the process a container runs, with upstream's rules: command
// replaces the entrypoint (and drops the image's cmd), args replace cmd.
func Argv(e Entry, command, args []string) []string {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(argv, command...)
		argv = append(argv, args...)
	case len(args) > 0:
		argv = append(append(argv, e.Entrypoint...), args...)
	default:
		argv = append(append(argv, e.Entrypoint...), e.Cmd...)
	}
	return argv
}

// extract writes the built-in files under dir, rewriting only files whose
// content changed.
func extract(dir string) error {
	return fs.WalkDir(builtinFiles, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, strings.TrimPrefix(p, "files"))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := builtinFiles.ReadFile(p)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(target); err == nil && bytes.Equal(old, data) {
			return nil
		}
		tmp := target + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, target)
	})
}
