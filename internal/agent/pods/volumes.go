package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/wharf-io/wharf/internal/agent/podenv"
)

// objects is where volumes and env read configMaps, secrets and tokens.
type objects interface {
	podenv.Lookup
	// Token is a service-account token bound to pod.
	Token(ctx context.Context, pod *corev1.Pod, serviceAccount, audience string, seconds int64) (string, time.Time, error)
}

// volumeSet writes a pod's volumes under dir/<volume> and remembers when
// its tokens must be refreshed.
type volumeSet struct {
	dir     string
	refresh time.Time
}

// write (re)writes every volume of pod that holds data (configMap, secret,
// projected, downwardAPI) and creates emptyDirs; hostPath volumes point at
// the host. It returns the host path of each volume.
func (v *volumeSet) write(ctx context.Context, pod *corev1.Pod, src objects) (map[string]string, error) {
	paths := map[string]string{}
	v.refresh = time.Time{}
	for _, vol := range pod.Spec.Volumes {
		dir := filepath.Join(v.dir, vol.Name)
		if hp := vol.HostPath; hp != nil {
			if err := hostPath(hp); err != nil {
				return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
			}
			paths[vol.Name] = hp.Path
			continue
		}
		files, err := v.files(ctx, pod, vol, src)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if files != nil {
			if err := writeFiles(dir, files); err != nil {
				return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
			}
		}
		paths[vol.Name] = dir
	}
	return paths, nil
}

// NeedsRefresh says whether a token is near its expiry (80% of its life,
// as kubelet refreshes).
func (v *volumeSet) NeedsRefresh(now time.Time) bool {
	return !v.refresh.IsZero() && now.After(v.refresh)
}

// files is a volume's content, nil for emptyDir.
func (v *volumeSet) files(ctx context.Context, pod *corev1.Pod, vol corev1.Volume, src objects) (map[string][]byte, error) {
	switch {
	case vol.EmptyDir != nil:
		return nil, nil
	case vol.ConfigMap != nil:
		cm, err := src.ConfigMap(pod.Namespace, vol.ConfigMap.Name)
		if err != nil {
			return optionalVolume(vol.ConfigMap.Optional, err)
		}
		return keyFiles(cm.Data, cm.BinaryData, vol.ConfigMap.Items, vol.ConfigMap.Optional)
	case vol.Secret != nil:
		s, err := src.Secret(pod.Namespace, vol.Secret.SecretName)
		if err != nil {
			return optionalVolume(vol.Secret.Optional, err)
		}
		return keyFiles(nil, s.Data, vol.Secret.Items, vol.Secret.Optional)
	case vol.DownwardAPI != nil:
		return downwardFiles(pod, vol.DownwardAPI.Items)
	case vol.Projected != nil:
		return v.projected(ctx, pod, vol.Projected, src)
	}
	return nil, fmt.Errorf("volume type not supported by this node")
}

func (v *volumeSet) projected(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, src objects) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, s := range p.Sources {
		var files map[string][]byte
		var err error
		switch {
		case s.ServiceAccountToken != nil:
			files, err = v.token(ctx, pod, s.ServiceAccountToken, src)
		case s.ConfigMap != nil:
			cm, gerr := src.ConfigMap(pod.Namespace, s.ConfigMap.Name)
			if gerr != nil {
				files, err = optionalVolume(s.ConfigMap.Optional, gerr)
			} else {
				files, err = keyFiles(cm.Data, cm.BinaryData, s.ConfigMap.Items, s.ConfigMap.Optional)
			}
		case s.Secret != nil:
			sec, gerr := src.Secret(pod.Namespace, s.Secret.Name)
			if gerr != nil {
				files, err = optionalVolume(s.Secret.Optional, gerr)
			} else {
				files, err = keyFiles(nil, sec.Data, s.Secret.Items, s.Secret.Optional)
			}
		case s.DownwardAPI != nil:
			files, err = downwardFiles(pod, s.DownwardAPI.Items)
		}
		if err != nil {
			return nil, err
		}
		for k, d := range files {
			out[k] = d
		}
	}
	return out, nil
}

func (v *volumeSet) token(ctx context.Context, pod *corev1.Pod, t *corev1.ServiceAccountTokenProjection, src objects) (map[string][]byte, error) {
	seconds := int64(3607)
	if t.ExpirationSeconds != nil {
		seconds = *t.ExpirationSeconds
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tok, exp, err := src.Token(ctx, pod, sa, t.Audience, seconds)
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	at := time.Now().Add(time.Until(exp) * 8 / 10)
	if v.refresh.IsZero() || at.Before(v.refresh) {
		v.refresh = at
	}
	return map[string][]byte{t.Path: []byte(tok)}, nil
}

func optionalVolume(optional *bool, err error) (map[string][]byte, error) {
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return map[string][]byte{}, nil
	}
	return nil, err
}

// keyFiles maps keys to files: every key, or the listed items only.
func keyFiles(data map[string]string, binary map[string][]byte, items []corev1.KeyToPath, optional *bool) (map[string][]byte, error) {
	all := map[string][]byte{}
	for k, d := range data {
		all[k] = []byte(d)
	}
	for k, d := range binary {
		all[k] = d
	}
	if len(items) == 0 {
		return all, nil
	}
	out := map[string][]byte{}
	for _, it := range items {
		d, ok := all[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("configmap/secret references non-existent key: %s", it.Key)
		}
		out[it.Path] = d
	}
	return out, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, it := range items {
		if it.FieldRef == nil {
			continue // resourceFieldRef needs a container; left out
		}
		val, err := podenv.FieldRef(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		out[it.Path] = []byte(val)
	}
	return out, nil
}

// writeFiles replaces dir's files with files, atomically per file.
func writeFiles(dir string, files map[string][]byte) error {
	for rel, data := range files {
		clean := filepath.Clean("/" + rel)
		if strings.Contains(rel, "..") {
			return fmt.Errorf("path %q must not contain '..'", rel)
		}
		target := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		tmp := target + ".wharf-tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			return err
		}
	}
	return nil
}

func hostPath(hp *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		return os.MkdirAll(hp.Path, 0o755)
	case corev1.HostPathFileOrCreate:
		f, err := os.OpenFile(hp.Path, os.O_CREATE, 0o644)
		if err == nil {
			f.Close()
		}
		return err
	case corev1.HostPathUnset:
		return nil
	}
	if _, err := os.Stat(hp.Path); err != nil {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, t)
	}
	return nil
}
