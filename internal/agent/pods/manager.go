// Package pods is the node agent's kubelet: it runs the pods bound to its
// node. Each pod gets a network sandbox (a named network namespace given an
// interface and IP by CNI), its volumes written to disk, and containers
// started as processes under `wharf init`; one worker per pod drives the
// pod to what its spec and restart policy say, runs its probes, posts its
// status and, when the pod is deleted, stops it within its grace period and
// removes everything it made. State lives on disk, so an agent restarted
// (even after kill -9) adopts the pods that kept running.
package pods

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/wharf-io/wharf/internal/agent/container"
	"github.com/wharf-io/wharf/internal/agent/images"
	"github.com/wharf-io/wharf/internal/agent/podnet"
)

// Network is the pod network sandbox (podnet.Manager).
type Network interface {
	Setup(ctx context.Context, pod podnet.PodRef, ports []podnet.PortMapping) (podnet.Sandbox, error)
	Recover(ctx context.Context, pod podnet.PodRef) (podnet.Sandbox, bool, error)
	Teardown(ctx context.Context, pod podnet.PodRef) error
	GC(ctx context.Context, keep []podnet.PodRef) error
}

// Runtime runs containers (container.Runtime).
type Runtime interface {
	Start(spec container.Spec) (container.State, error)
	State(id string) (container.State, error)
	Wait(ctx context.Context, id string) (container.State, error)
	Stop(id string, grace time.Duration) error
	Remove(id string) error
	List() ([]string, error)
}

// Config is the pod manager's configuration.
type Config struct {
	NodeName, NodeIP string
	// DataDir holds pods/<uid> (pod state and volumes) and logs/pods.
	DataDir string
	DNS     DNSConfig
	Network Network
	Runtime Runtime
	// Exec runs a command in a container, for exec probes.
	Exec   func(ctx context.Context, id string, cmd []string) (int, string, error)
	Images *images.Table
	Client kubernetes.Interface
	// WharfBinary is mounted at /.wharf/bin/wharf in every container.
	WharfBinary string
	// StopPodsOnExit stops every pod and removes its sandbox when Run
	// returns (a clean stop); kill -9 leaves them running for adoption.
	StopPodsOnExit bool
	Recorder       record.EventRecorder
}

// Manager runs the pods bound to one node.
type Manager struct {
	cfg      Config
	pods     corelisters.PodLister
	services corelisters.ServiceLister
	objects  objects

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

// New makes a manager; Run starts it.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg, workers: map[types.UID]*podWorker{}}
}

// Run runs the node's pods until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	for _, d := range []string{m.podsDir(), m.logsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	onNode := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	all := informers.NewSharedInformerFactory(m.cfg.Client, 0)
	podInf := onNode.Core().V1().Pods()
	m.pods = podInf.Lister()
	m.services = all.Core().V1().Services().Lister()
	m.objects = &apiObjects{client: m.cfg.Client}
	podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { m.dispatch(ctx, obj) },
		UpdateFunc: func(_, obj interface{}) { m.dispatch(ctx, obj) },
		DeleteFunc: func(obj interface{}) { m.dispatch(ctx, obj) },
	})
	onNode.Start(ctx.Done())
	all.Start(ctx.Done())
	onNode.WaitForCacheSync(ctx.Done())
	all.WaitForCacheSync(ctx.Done())
	if ctx.Err() != nil {
		return nil
	}
	m.cleanOrphans(ctx)
	<-ctx.Done()
	m.mu.Lock()
	for _, w := range m.workers {
		w.shutdown(m.cfg.StopPodsOnExit)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// dispatch hands a pod event to the pod's worker, starting one for a pod
// it has not seen.
func (m *Manager) dispatch(ctx context.Context, obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	w, ok := m.workers[pod.UID]
	if !ok {
		w = newPodWorker(m, pod)
		m.workers[pod.UID] = w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			w.run(ctx)
			m.mu.Lock()
			delete(m.workers, pod.UID)
			m.mu.Unlock()
		}()
	}
	w.wakeUp()
}

// Worker returns the worker of the pod namespace/name, for streaming.
func (m *Manager) worker(namespace, name string) (*podWorker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		if w.ref.Namespace == namespace && w.ref.Name == name {
			return w, nil
		}
	}
	return nil, fmt.Errorf("pod %s/%s is not running on this node", namespace, name)
}

// podRecord is <data-dir>/pods/<uid>/pod.json: whose directory this is,
// so an orphan (a pod deleted while the agent was down) can be cleaned.
type podRecord struct {
	podnet.PodRef
}

func (m *Manager) podsDir() string { return filepath.Join(m.cfg.DataDir, "pods") }
func (m *Manager) logsDir() string { return filepath.Join(m.cfg.DataDir, "logs", "pods") }

// cleanOrphans stops and removes what belongs to pods that are no longer
// bound to this node (deleted while the agent was down), then lets CNI GC
// free any address no live pod holds.
func (m *Manager) cleanOrphans(ctx context.Context) {
	live := map[types.UID]bool{}
	pods, _ := m.pods.List(everything)
	var keep []podnet.PodRef
	for _, p := range pods {
		live[p.UID] = true
		keep = append(keep, refOf(p))
	}
	entries, _ := os.ReadDir(m.podsDir())
	for _, e := range entries {
		uid := types.UID(e.Name())
		if live[uid] {
			continue
		}
		var rec podRecord
		data, err := os.ReadFile(filepath.Join(m.podsDir(), e.Name(), "pod.json"))
		if err == nil && json.Unmarshal(data, &rec) == nil {
			w := &podWorker{m: m, uid: uid, ref: rec.PodRef}
			w.adopt()
			w.teardown(ctx, time.Second)
		} else {
			os.RemoveAll(filepath.Join(m.podsDir(), e.Name()))
		}
	}
	if err := m.cfg.Network.GC(ctx, keep); err != nil {
		logf("CNI GC: %v", err)
	}
}

func refOf(p *corev1.Pod) podnet.PodRef {
	return podnet.PodRef{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)}
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wharf agent: "+format+"\n", args...)
}
