// Package scheduler binds pending pods to nodes: Ready nodes only, honouring
// spec.nodeName, nodeSelector, taints and tolerations (NoSchedule and
// NoExecute), host port conflicts and resource requests against allocatable,
// preferring the least allocated node. When nothing fits it records
// upstream's FailedScheduling event and PodScheduled=False condition, and
// tries again when nodes or pods change.
package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/wharf-io/wharf/internal/controller/manager"
)

// SchedulerName is the name pods ask for (spec.schedulerName).
const SchedulerName = corev1.DefaultSchedulerName

// Scheduler is the pod scheduler.
type Scheduler struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder

	mu sync.Mutex
	// assumed are pods bound here that the informer has not shown bound yet.
	assumed map[string]*corev1.Pod
}

// New wires the scheduler to the informers.
func New(c *manager.Context) (manager.Controller, error) {
	pi, ni := c.Informers.Core().V1().Pods(), c.Informers.Core().V1().Nodes()
	s := &Scheduler{
		client: c.Client, pods: pi.Lister(), nodes: ni.Lister(),
		synced:   []cache.InformerSynced{pi.Informer().HasSynced, ni.Informer().HasSynced},
		recorder: c.Recorder("default-scheduler"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"}),
		assumed: map[string]*corev1.Pod{},
	}
	if _, err := pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onPod,
		UpdateFunc: func(_, cur interface{}) { s.onPod(cur) },
		DeleteFunc: func(obj interface{}) { s.requeueAll() },
	}); err != nil {
		return nil, err
	}
	if _, err := ni.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(interface{}) { s.requeueAll() },
		UpdateFunc: func(_, _ interface{}) { s.requeueAll() },
	}); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Scheduler) onPod(obj interface{}) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key, _ := cache.MetaNamespaceKeyFunc(p)
	if p.Spec.NodeName != "" {
		s.mu.Lock()
		delete(s.assumed, key)
		s.mu.Unlock()
		return
	}
	if p.Spec.SchedulerName == SchedulerName && p.DeletionTimestamp == nil {
		s.queue.Add(key)
	}
}

// requeueAll retries every pending pod (a node appeared or freed up).
func (s *Scheduler) requeueAll() {
	pods, err := s.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" && p.Spec.SchedulerName == SchedulerName && p.DeletionTimestamp == nil {
			key, _ := cache.MetaNamespaceKeyFunc(p)
			s.queue.Add(key)
		}
	}
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer s.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	// One worker: decisions depend on what earlier decisions bound.
	go wait.UntilWithContext(ctx, s.worker, time.Second)
	<-ctx.Done()
}

func (s *Scheduler) worker(ctx context.Context) {
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		retry, err := s.schedule(ctx, key)
		switch {
		case err != nil:
			utilruntime.HandleError(fmt.Errorf("schedule %s: %w", key, err))
			s.queue.AddRateLimited(key)
		case retry:
			s.queue.AddRateLimited(key)
		default:
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// schedule places one pod; retry says it did not fit anywhere yet.
func (s *Scheduler) schedule(ctx context.Context, key string) (bool, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return false, err
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil {
		return false, nil
	}
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return false, err
	}
	all, err := s.pods.List(labels.Everything())
	if err != nil {
		return false, err
	}
	infos := newNodeInfos(nodes, append(all, s.assumedPods()...))
	node, why := decide(pod, infos)
	if node == "" {
		return true, s.unschedulable(ctx, pod, why)
	}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := s.client.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	bound := pod.DeepCopy()
	bound.Spec.NodeName = node
	s.mu.Lock()
	s.assumed[key] = bound
	s.mu.Unlock()
	s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, name, node)
	return false, nil
}

func (s *Scheduler) assumedPods() []*corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(s.assumed))
	for _, p := range s.assumed {
		out = append(out, p)
	}
	return out
}

// unschedulable records why the pod waits: an event and the PodScheduled
// condition, as upstream.
func (s *Scheduler) unschedulable(ctx context.Context, pod *corev1.Pod, why string) error {
	s.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", why)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == why {
			return nil
		}
	}
	p := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: why, LastTransitionTime: metav1.Now()}
	replaced := false
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			p.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		p.Status.Conditions = append(p.Status.Conditions, cond)
	}
	_, err := s.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
