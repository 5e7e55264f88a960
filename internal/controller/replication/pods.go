package replication

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Event reasons, as upstream's pod control records them.
const (
	FailedCreatePodReason     = "FailedCreate"
	SuccessfulCreatePodReason = "SuccessfulCreate"
	FailedDeletePodReason     = "FailedDelete"
	SuccessfulDeletePodReason = "SuccessfulDelete"
)

// PodDeletionCost is the annotation that orders pods for scale-down
// (lower first).
const PodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodAvailable reports whether the pod has been ready for at least
// minReadySeconds at now.
func IsPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	d := time.Duration(minReadySeconds) * time.Second
	return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(d).Before(now)
}

// IsPodActive reports whether the pod counts as a replica: not terminal and
// not being deleted.
func IsPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// FilterActivePods keeps the active pods.
func FilterActivePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// podKey is namespace/name, the key deletions are expected under.
func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// ---- which pods go first ----

// rankedPods sorts pods so that the ones to delete first come first, as
// upstream's ActivePodsWithRanks: unscheduled before scheduled; pending
// before unknown before running; not ready before ready; lower deletion
// cost first; more pods of the same owner family on the node first;
// recently ready before long ready; more restarts first; newer before
// older. Times are compared on a logarithmic scale (pods of about the same
// age tie and fall back to their UID), as upstream's LogarithmicScaleDown.
type rankedPods struct {
	pods []*corev1.Pod
	rank []int
	now  time.Time
}

func (s rankedPods) Len() int { return len(s.pods) }
func (s rankedPods) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

var phaseOrder = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func (s rankedPods) Less(i, j int) bool {
	p1, p2 := s.pods[i], s.pods[j]
	// 1. Unassigned < assigned.
	if p1.Spec.NodeName != p2.Spec.NodeName && (p1.Spec.NodeName == "" || p2.Spec.NodeName == "") {
		return p1.Spec.NodeName == ""
	}
	// 2. Pending < Unknown < Running.
	if phaseOrder[p1.Status.Phase] != phaseOrder[p2.Status.Phase] {
		return phaseOrder[p1.Status.Phase] < phaseOrder[p2.Status.Phase]
	}
	// 3. Not ready < ready.
	if r1, r2 := IsPodReady(p1), IsPodReady(p2); r1 != r2 {
		return !r1
	}
	// 4. Lower deletion cost < higher.
	if c1, c2 := deletionCost(p1), deletionCost(p2); c1 != c2 {
		return c1 < c2
	}
	// 5. Doubled up (more related pods on the node) < not.
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	// 6. Ready for a shorter time < longer.
	if IsPodReady(p1) && IsPodReady(p2) {
		t1, t2 := readyTime(p1), readyTime(p2)
		if !t1.Equal(t2) {
			if d := logRankDiff(t1, t2, s.now); d != 0 {
				return d < 0
			}
		}
	}
	// 7. More restarts < fewer.
	if r1, r2 := maxRestarts(p1), maxRestarts(p2); r1 != r2 {
		return r1 > r2
	}
	// 8. Newer < older (an empty creation time counts as newest).
	if !p1.CreationTimestamp.Equal(&p2.CreationTimestamp) {
		if p1.CreationTimestamp.IsZero() || p2.CreationTimestamp.IsZero() {
			return p1.CreationTimestamp.IsZero()
		}
		if d := logRankDiff(p1.CreationTimestamp.Time, p2.CreationTimestamp.Time, s.now); d != 0 {
			return d < 0
		}
	}
	return p1.UID < p2.UID
}

func deletionCost(p *corev1.Pod) int64 {
	v, ok := p.Annotations[PodDeletionCost]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return n
}

func readyTime(p *corev1.Pod) time.Time {
	if c := readyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		if c.RestartCount > n {
			n = c.RestartCount
		}
	}
	return n
}

// logRankDiff compares the ages of t1 and t2 at now on a log2 scale: <0
// means t1 is younger by at least a power of two.
func logRankDiff(t1, t2, now time.Time) int {
	rank := func(t time.Time) int {
		if t.IsZero() {
			return -1
		}
		d := now.Sub(t)
		if d <= 0 {
			return 0
		}
		return int(math.Log2(float64(d)))
	}
	return rank(t1) - rank(t2)
}

// podsToDelete picks diff victims among filtered; related are the pods of
// the owner's whole family (a Deployment's ReplicaSets), used to prefer
// pods doubled up on a node.
func podsToDelete(filtered, related []*corev1.Pod, diff int, now time.Time) []*corev1.Pod {
	if diff >= len(filtered) {
		return filtered
	}
	onNode := map[string]int{}
	for _, p := range related {
		if p.Spec.NodeName != "" && IsPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	s := rankedPods{pods: append([]*corev1.Pod(nil), filtered...), rank: make([]int, len(filtered)), now: now}
	for i, p := range s.pods {
		if p.Spec.NodeName != "" {
			s.rank[i] = onNode[p.Spec.NodeName]
		}
	}
	sort.Sort(s)
	return s.pods[:diff]
}

// ---- creating and deleting ----

// slowStartBatch calls fn count times, in batches of 1, 2, 4, ... run in
// parallel, stopping after the first batch with an error; it returns how
// many calls succeeded. A whole batch failing (quota, admission) costs one
// call instead of count.
func slowStartBatch(count, initialBatchSize int, fn func() error) (int, error) {
	remaining := count
	successes := 0
	for batch := min(remaining, initialBatchSize); batch > 0; batch = min(2*batch, remaining) {
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errCh <- err
				}
			}()
		}
		wg.Wait()
		successes += batch - len(errCh)
		if len(errCh) > 0 {
			return successes, <-errCh
		}
		remaining -= batch
	}
	return successes, nil
}

// podControl creates and deletes an owner's pods and records upstream's
// events on the owner.
type podControl struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
}

// podFromTemplate is the pod an owner creates: the template's labels,
// annotations, finalizers and spec, the name generated from "<owner>-",
// and a controller reference to the owner.
func podFromTemplate(template *corev1.PodTemplateSpec, ownerName string, ref *metav1.OwnerReference) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:       copyMap(template.Labels),
			Annotations:  copyMap(template.Annotations),
			GenerateName: ownerName + "-",
			Finalizers:   append([]string(nil), template.Finalizers...),
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if ref != nil {
		pod.OwnerReferences = append(pod.OwnerReferences, *ref)
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (pc *podControl) createPod(ctx context.Context, namespace string, template *corev1.PodTemplateSpec, owner runtime.Object, ownerName string, ref *metav1.OwnerReference) error {
	pod := podFromTemplate(template, ownerName, ref)
	if len(pod.Labels) == 0 {
		return fmt.Errorf("unable to create pods, no labels")
	}
	created, err := pc.client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		// Only report it when the namespace is not going away.
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			pc.recorder.Eventf(owner, corev1.EventTypeWarning, FailedCreatePodReason, "Error creating: %v", err)
		}
		return err
	}
	pc.recorder.Eventf(owner, corev1.EventTypeNormal, SuccessfulCreatePodReason, "Created pod: %v", created.Name)
	return nil
}

func (pc *podControl) deletePod(ctx context.Context, namespace, name string, owner runtime.Object) error {
	err := pc.client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return err
		}
		pc.recorder.Eventf(owner, corev1.EventTypeWarning, FailedDeletePodReason, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %v", err)
	}
	pc.recorder.Eventf(owner, corev1.EventTypeNormal, SuccessfulDeletePodReason, "Deleted pod: %v", name)
	return nil
}
