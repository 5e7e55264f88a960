package pods

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ctrView is what the agent knows of one container, the input of the pod
// status.
type ctrView struct {
	Name, Image string
	// ID is the runtime ID of the current attempt, "" before the first.
	ID string
	// RestartCount is the number of restarts (the attempt index).
	RestartCount int32
	// Running, or Exited with ExitCode/Reason at FinishedAt.
	Running             bool
	Exited              bool
	ExitCode            int32
	Signal              int32
	Reason, Message     string
	StartedAt, Finished time.Time
	// WaitingReason is set while the container does not run: ContainerCreating,
	// CrashLoopBackOff, ErrImagePull, CreateContainerError, ...
	WaitingReason, WaitingMessage string
	// Last is the previous attempt's end, for lastState.
	Last *ctrView
	// Ready and Started come from the probes.
	Ready, Started bool
}

// podView is the input of the pod status: the pod, its sandbox and its
// containers.
type podView struct {
	HostIP        string
	PodIPs        []string
	SandboxReady  bool
	StartTime     time.Time
	Init          []ctrView
	Containers    []ctrView
	InitDone      bool
	FailedReason  string
	FailedMessage string
}

// computeStatus is the pod status kubelet would post for v: phase,
// conditions, addresses and container statuses. Transition times of
// conditions that did not change are kept from prev.
func computeStatus(pod *corev1.Pod, v podView, now time.Time) corev1.PodStatus {
	prev := pod.Status
	st := corev1.PodStatus{
		Phase:    phase(pod, v),
		HostIP:   v.HostIP,
		QOSClass: prev.QOSClass,
	}
	if v.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: v.HostIP}}
	}
	if !v.StartTime.IsZero() {
		t := metav1.NewTime(v.StartTime)
		st.StartTime = &t
	}
	for i, ip := range v.PodIPs {
		if i == 0 {
			st.PodIP = ip
		}
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
	}
	if st.Phase == corev1.PodFailed && v.FailedReason != "" {
		st.Reason, st.Message = v.FailedReason, v.FailedMessage
	}
	for _, c := range v.Init {
		st.InitContainerStatuses = append(st.InitContainerStatuses, containerStatus(c))
	}
	for _, c := range v.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(c))
	}
	st.Conditions = conditions(pod, v, st, now)
	return st
}

func phase(pod *corev1.Pod, v podView) corev1.PodPhase {
	if v.FailedReason != "" {
		return corev1.PodFailed
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return pod.Status.Phase // terminal phases never change
	}
	for _, c := range v.Init {
		if c.Exited && c.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
	}
	if !v.InitDone || !v.SandboxReady {
		return corev1.PodPending
	}
	running, succeeded, failed, waiting := 0, 0, 0, 0
	for _, c := range v.Containers {
		switch {
		case c.Running:
			running++
		case c.Exited && c.ExitCode == 0:
			succeeded++
		case c.Exited:
			failed++
		default:
			waiting++
		}
	}
	restarts := func(c ctrView) bool {
		switch pod.Spec.RestartPolicy {
		case corev1.RestartPolicyNever:
			return false
		case corev1.RestartPolicyOnFailure:
			return !(c.Exited && c.ExitCode == 0)
		}
		return true
	}
	switch {
	case waiting > 0 && running == 0 && succeeded+failed == 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	}
	for _, c := range v.Containers {
		if restarts(c) && c.Exited {
			return corev1.PodRunning // about to restart
		}
		if !c.Exited {
			return corev1.PodPending
		}
	}
	if failed > 0 {
		return corev1.PodFailed
	}
	return corev1.PodSucceeded
}

func containerStatus(c ctrView) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: "wharf://" + c.Image,
		RestartCount: c.RestartCount, Ready: c.Ready,
	}
	if c.ID != "" {
		s.ContainerID = "wharf://" + c.ID
	}
	started := c.Started
	s.Started = &started
	s.State = state(c)
	if c.Last != nil {
		s.LastTerminationState = state(*c.Last)
	}
	return s
}

func state(c ctrView) corev1.ContainerState {
	switch {
	case c.Running:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}}
	case c.Exited && c.WaitingReason == "":
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: c.ExitCode, Signal: c.Signal, Reason: c.Reason, Message: c.Message,
			StartedAt: metav1.NewTime(c.StartedAt), FinishedAt: metav1.NewTime(c.Finished),
			ContainerID: "wharf://" + c.ID,
		}}
	}
	reason := c.WaitingReason
	if reason == "" {
		reason = "ContainerCreating"
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: c.WaitingMessage}}
}

func conditions(pod *corev1.Pod, v podView, st corev1.PodStatus, now time.Time) []corev1.PodCondition {
	ready, notReady := true, []string{}
	for _, c := range v.Containers {
		if !c.Ready {
			ready = false
			notReady = append(notReady, c.Name)
		}
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	if terminal {
		ready = false
	}
	containersReady := ready
	gatesMsg := unmetGates(pod)
	if gatesMsg != "" {
		ready = false
	}
	reason, msg := "", ""
	if !ready {
		reason = "ContainersNotReady"
		msg = fmt.Sprintf("containers with unready status: %v", notReady)
		if terminal {
			reason, msg = "PodCompleted", ""
		}
	}
	initReason := ""
	if !v.InitDone {
		initReason = "ContainersNotInitialized"
	}
	if terminal && st.Phase == corev1.PodSucceeded {
		initReason = "PodCompleted"
	}
	conds := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, v.SandboxReady, "", ""),
		cond(corev1.PodInitialized, v.InitDone, initReason, ""),
		cond(corev1.ContainersReady, containersReady, reason, msg),
		readyCondition(ready, containersReady, reason, msg, gatesMsg),
		cond(corev1.PodScheduled, true, "", ""),
	}
	mt := metav1.NewTime(now)
	for i := range conds {
		conds[i].LastTransitionTime = mt
		for _, p := range pod.Status.Conditions {
			if p.Type == conds[i].Type && p.Status == conds[i].Status {
				conds[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	for _, p := range pod.Status.Conditions {
		if !isKubeletCondition(p.Type) {
			conds = append(conds, p)
		}
	}
	return conds
}

// readyCondition is PodReady: the containers' readiness and, as upstream,
// every readiness gate's condition True.
func readyCondition(ready, containersReady bool, reason, msg, gatesMsg string) corev1.PodCondition {
	if containersReady && !ready {
		reason, msg = "ReadinessGatesNotReady", gatesMsg
	}
	return cond(corev1.PodReady, ready, reason, msg)
}

// unmetGates says which readiness gates are not True, "" when all are.
func unmetGates(pod *corev1.Pod) string {
	var missing []string
	for _, g := range pod.Spec.ReadinessGates {
		met := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				met = true
			}
		}
		if !met {
			missing = append(missing, string(g.ConditionType))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", missing[0])
}

func cond(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
		reason, msg = "", ""
	}
	return corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

func isKubeletCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled:
		return true
	}
	return false
}

// statusEqual says whether posting b over a would change nothing.
func statusEqual(a, b corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}
