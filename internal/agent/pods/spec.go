package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wharf-io/wharf/internal/agent/container"
	"github.com/wharf-io/wharf/internal/agent/images"
	"github.com/wharf-io/wharf/internal/agent/podenv"
)

var everything = labels.Everything()

// wharfInContainer is where every container finds the wharf binary (the
// entrypoint of the agnhost and netexec images).
const wharfInContainer = "/.wharf/bin/wharf"

// defaultPath is the PATH of a container whose image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cgroupParent is the cgroup of a pod's containers.
func cgroupParent(uid types.UID) string { return "wharf/pod" + string(uid) }

// startError is why a container could not be started: the waiting reason
// for its status and the event.
type startError struct {
	reason, eventReason, msg string
}

// buildSpec turns a pod's container into what the runtime starts:
// argv and env as upstream computes them, the image's files, volumes and
// the pod's /etc files.
func (w *podWorker) buildSpec(pod *corev1.Pod, c corev1.Container, attempt int) (container.Spec, *startError) {
	entry, err := w.m.cfg.Images.Resolve(c.Image)
	if err != nil {
		var nf images.NotFoundError
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		if !errors.As(err, &nf) {
			return container.Spec{}, &startError{"InvalidImageName", "InspectFailed", err.Error()}
		}
		return container.Spec{}, &startError{"ErrImagePull", "Failed", msg}
	}
	services := w.envServices(pod)
	env, command, args, err := podenv.Container(w.podWithIPs(pod), &c, services, w.m.objects)
	if err != nil {
		return container.Spec{}, &startError{"CreateContainerConfigError", "Failed", "Error: " + err.Error()}
	}
	mounts, serr := w.mounts(c, entry)
	if serr != nil {
		return container.Spec{}, serr
	}
	workDir := c.WorkingDir
	if workDir == "" {
		workDir = entry.WorkingDir
	}
	spec := container.Spec{
		ID:           fmt.Sprintf("%s_%s_%d", w.uid, c.Name, attempt),
		PodUID:       string(w.uid),
		Container:    c.Name,
		Hostname:     hostname(pod),
		Args:         images.Argv(entry, command, args),
		Env:          containerEnv(pod, entry.Env, env),
		WorkingDir:   workDir,
		Mounts:       mounts,
		Files:        w.etcFiles(pod),
		LogPath:      w.containerLog(c.Name, attempt),
		Stdin:        c.Stdin,
		StdinOnce:    c.StdinOnce,
		TTY:          c.TTY,
		CgroupParent: cgroupParent(w.uid),
	}
	if w.sandbox != nil {
		spec.NetnsPath = w.sandbox.NetnsPath
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		spec.CPUMilli = q.MilliValue()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		spec.MemoryBytes = q.Value()
	}
	if len(spec.Args) == 0 {
		return container.Spec{}, &startError{"CreateContainerConfigError", "Failed",
			"Error: no command specified"}
	}
	return spec, nil
}

// podWithIPs is pod with the addresses this worker knows, for the
// downward API (status.podIP) before the status is posted.
func (w *podWorker) podWithIPs(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	ips := w.podIPs()
	p.Status.PodIPs = nil
	for i, ip := range ips {
		if i == 0 {
			p.Status.PodIP = ip
		}
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	p.Status.HostIP = w.m.cfg.NodeIP
	p.Status.HostIPs = []corev1.HostIP{{IP: w.m.cfg.NodeIP}}
	return p
}

// podHostname is the UTS hostname: the node's on the host network.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	return hostname(pod)
}

// containerEnv is the image's env, then PATH, HOSTNAME and HOME unless
// set, then the container's own (which wins).
func containerEnv(pod *corev1.Pod, imageEnv, own []string) []string {
	names := map[string]bool{}
	for _, kv := range own {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	var env []string
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if !names[k] {
			names[k] = true
			env = append(env, kv)
		}
	}
	for _, kv := range imageEnv {
		add(kv)
	}
	add(defaultPath)
	add("HOSTNAME=" + podHostname(pod))
	add("HOME=/root")
	return append(env, own...)
}

// envServices are the services a container's variables come from, as
// kubelet picks them: the pod's namespace's (unless enableServiceLinks is
// false) and the kubernetes service of the default namespace.
func (w *podWorker) envServices(pod *corev1.Pod) []*corev1.Service {
	var out []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		out, _ = w.m.services.Services(pod.Namespace).List(everything)
	}
	if pod.Namespace != metav1.NamespaceDefault {
		if k, err := w.m.services.Services(metav1.NamespaceDefault).Get("kubernetes"); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// mounts are the image's files at its working dir, the wharf binary, and
// the container's volumeMounts.
func (w *podWorker) mounts(c corev1.Container, entry images.Entry) ([]container.Mount, *startError) {
	var out []container.Mount
	if entry.FilesDir != "" {
		out = append(out, container.Mount{HostPath: entry.FilesDir, ContainerPath: entry.WorkingDir, ReadOnly: true})
	}
	if w.m.cfg.WharfBinary != "" {
		out = append(out, container.Mount{HostPath: w.m.cfg.WharfBinary, ContainerPath: wharfInContainer, ReadOnly: true})
	}
	for _, vm := range c.VolumeMounts {
		host, ok := w.volPaths[vm.Name]
		if !ok {
			return nil, &startError{"CreateContainerConfigError", "Failed",
				fmt.Sprintf("Error: cannot find volume %q to mount into container %q", vm.Name, c.Name)}
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, filepath.Clean("/"+vm.SubPath))
		}
		out = append(out, container.Mount{HostPath: host, ContainerPath: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}

// etcFiles are the pod's /etc/resolv.conf, hosts, hostname and
// nsswitch.conf.
func (w *podWorker) etcFiles(pod *corev1.Pod) map[string][]byte {
	dns := w.m.cfg.DNS
	dns.HostResolvConf = readFileOr("/etc/resolv.conf", "")
	resolv, missing := resolvConf(pod, dns)
	if missing {
		w.event(pod, corev1.EventTypeWarning, "MissingClusterDNS",
			"pod: \""+pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.")
	}
	files := map[string][]byte{
		"/etc/resolv.conf":   []byte(resolv),
		"/etc/hosts":         hostsFile(pod, w.podIPs(), []byte(readFileOr("/etc/hosts", "")), dns.ClusterDomain),
		"/etc/nsswitch.conf": []byte(nsswitch),
	}
	if !pod.Spec.HostNetwork {
		files["/etc/hostname"] = []byte(hostname(pod) + "\n")
	}
	return files
}
