package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wharf-io/wharf/test/e2e/framework"
)

// There is no agent yet: the tests create pods bound to a node name (no Node
// object, so no controller acts on the node) and write their status the way
// an agent will, through /status.

// epClient is an admin client that does not print the deprecation warning
// the server sends with every core/v1 Endpoints response.
func epClient(t *testing.T, s *framework.Server) kubernetes.Interface {
	t.Helper()
	cfg := s.RestConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// epPod is a pod of the service "app" on node-a.
func epPod(name, app string) *corev1.Pod {
	p := pod(name)
	p.Labels = map[string]string{"app": app}
	p.Spec.NodeName = "node-a"
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	return p
}

// epSetStatus makes the pod Running with ip, Ready or not.
func epSetStatus(ctx context.Context, t *testing.T, client kubernetes.Interface, name, ip string, ready bool) {
	t.Helper()
	pods := client.CoreV1().Pods("default")
	for attempt := 0; ; attempt++ {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: now}}
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || attempt > 5 {
			t.Fatal(err)
		}
	}
}

// epAddresses returns the ready and not-ready IPs of an Endpoints object.
func epAddresses(ep *corev1.Endpoints) (ready, notReady []string) {
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			ready = append(ready, a.IP)
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
	}
	sort.Strings(ready)
	sort.Strings(notReady)
	return ready, notReady
}

func epHas(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// epSliceEndpoint finds the endpoint with ip in the slices.
func epSliceEndpoint(slices []discoveryv1.EndpointSlice, ip string) (discoveryv1.Endpoint, bool) {
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if len(e.Addresses) > 0 && e.Addresses[0] == ip {
				return e, true
			}
		}
	}
	return discoveryv1.Endpoint{}, false
}

func epSlices(ctx context.Context, t *testing.T, client kubernetes.Interface, svc string) []discoveryv1.EndpointSlice {
	t.Helper()
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func boolOf(b *bool) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprint(*b)
}

// epAwait watches from the current state (so no old event counts) and
// reports on the returned channel the time cond first holds.
func epAwait(ctx context.Context, t *testing.T, w watch.Interface, cond func(runtime.Object) bool) <-chan time.Time {
	t.Helper()
	ch := make(chan time.Time, 1)
	go func() {
		defer w.Stop()
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if ev.Type == watch.Error {
					return
				}
				if cond(ev.Object) {
					ch <- time.Now()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// epFlip sets a pod's readiness and measures how long until the Endpoints
// and the EndpointSlices of svc show it.
func epFlip(ctx context.Context, t *testing.T, client kubernetes.Interface, svc, pod, ip string, ready bool) (time.Duration, time.Duration) {
	t.Helper()
	ep, err := client.CoreV1().Endpoints("default").Get(ctx, svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices, err := client.DiscoveryV1().EndpointSlices("default").List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	epW, err := client.CoreV1().Endpoints("default").Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + svc, ResourceVersion: ep.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	slW, err := client.DiscoveryV1().EndpointSlices("default").Watch(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc, ResourceVersion: slices.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	epDone := epAwait(ctx, t, epW, func(o runtime.Object) bool {
		e, ok := o.(*corev1.Endpoints)
		if !ok {
			return false
		}
		r, nr := epAddresses(e)
		if ready {
			return epHas(r, ip) && !epHas(nr, ip)
		}
		return epHas(nr, ip) && !epHas(r, ip)
	})
	slDone := epAwait(ctx, t, slW, func(o runtime.Object) bool {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			return false
		}
		e, ok := epSliceEndpoint([]discoveryv1.EndpointSlice{*s}, ip)
		return ok && e.Conditions.Ready != nil && *e.Conditions.Ready == ready &&
			e.Conditions.Serving != nil && *e.Conditions.Serving == ready
	})
	start := time.Now()
	epSetStatus(ctx, t, client, pod, ip, ready)
	var dEp, dSl time.Duration
	for _, c := range []struct {
		ch <-chan time.Time
		d  *time.Duration
		w  string
	}{{epDone, &dEp, "Endpoints"}, {slDone, &dSl, "EndpointSlice"}} {
		select {
		case at := <-c.ch:
			*c.d = at.Sub(start)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of %s did not show %s ready=%v within 10s", c.w, svc, ip, ready)
		}
	}
	return dEp, dSl
}

// TestEndpointsFollowPods: a service's Endpoints and EndpointSlices follow
// pods as they get addresses, flip readiness (each flip shown within a
// second, measured on watches), terminate and go; the service's deletion
// takes its Endpoints along.
func TestEndpointsFollowPods(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := epClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	svc := service("web")
	svc.Labels = map[string]string{"tier": "front"}
	svc.Spec.Selector = map[string]string{"app": "web"}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
	created, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{"web-0": "10.244.0.10", "web-1": "10.244.0.11", "web-2": "10.244.0.12"}
	names := []string{"web-0", "web-1", "web-2"}
	for _, n := range names {
		if _, err := client.CoreV1().Pods("default").Create(ctx, epPod(n, "web"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An empty Endpoints (no pod has an address yet) and a placeholder slice.
	waitFor(t, 30*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(ep.Subsets) == 0, fmt.Sprintf("subsets %+v", ep.Subsets)
	})
	epSetStatus(ctx, t, client, "web-0", ips["web-0"], true)
	epSetStatus(ctx, t, client, "web-1", ips["web-1"], true)
	epSetStatus(ctx, t, client, "web-2", ips["web-2"], false)
	waitFor(t, 10*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		r, nr := epAddresses(ep)
		return strings.Join(r, ",") == "10.244.0.10,10.244.0.11" && strings.Join(nr, ",") == "10.244.0.12",
			fmt.Sprintf("ready %v not ready %v", r, nr)
	})
	ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Labels["endpoints.kubernetes.io/managed-by"] != "endpoint-controller" || ep.Labels["tier"] != "front" {
		t.Errorf("endpoints labels %v", ep.Labels)
	}
	if ep.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
		t.Errorf("no trigger-time annotation: %v", ep.Annotations)
	}
	a := ep.Subsets[0].Addresses[0]
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Ports) != 1 || ep.Subsets[0].Ports[0].Port != 8080 || ep.Subsets[0].Ports[0].Name != "http" ||
		a.NodeName == nil || *a.NodeName != "node-a" || a.TargetRef == nil || a.TargetRef.Kind != "Pod" || a.TargetRef.Name != "web-0" {
		t.Errorf("endpoints %+v", ep.Subsets)
	}
	out := s.MustKubectl("get", "endpoints", "web")
	if !matches(`web\s+10\.244\.0\.10:8080,10\.244\.0\.11:8080\s`, out) {
		t.Errorf("get endpoints:\n%s", out)
	}

	// Slices: one, owned by the service, with upstream's labels and
	// conditions.
	waitFor(t, 10*time.Second, func() (bool, string) {
		sl := epSlices(ctx, t, client, "web")
		_, ok := epSliceEndpoint(sl, "10.244.0.12")
		return len(sl) == 1 && len(sl[0].Endpoints) == 3 && ok, fmt.Sprintf("slices %+v", sl)
	})
	sl := epSlices(ctx, t, client, "web")[0]
	if !strings.HasPrefix(sl.Name, "web-") || sl.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" ||
		sl.Labels["tier"] != "front" || sl.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("slice %s labels %v type %s", sl.Name, sl.Labels, sl.AddressType)
	}
	if len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].UID != created.UID || sl.OwnerReferences[0].Kind != "Service" {
		t.Errorf("slice owners %+v", sl.OwnerReferences)
	}
	if len(sl.Ports) != 1 || *sl.Ports[0].Port != 8080 || *sl.Ports[0].Name != "http" {
		t.Errorf("slice ports %+v", sl.Ports)
	}
	for ip, want := range map[string]bool{"10.244.0.10": true, "10.244.0.12": false} {
		e, _ := epSliceEndpoint([]discoveryv1.EndpointSlice{sl}, ip)
		if boolOf(e.Conditions.Ready) != fmt.Sprint(want) || boolOf(e.Conditions.Serving) != fmt.Sprint(want) ||
			boolOf(e.Conditions.Terminating) != "false" || e.NodeName == nil || e.TargetRef == nil {
			t.Errorf("slice endpoint %s: %+v ready=%s serving=%s terminating=%s", ip, e, boolOf(e.Conditions.Ready),
				boolOf(e.Conditions.Serving), boolOf(e.Conditions.Terminating))
		}
	}

	// Readiness flips, measured.
	var worstEp, worstSl time.Duration
	for i := 0; i < 5; i++ {
		for _, ready := range []bool{false, true} {
			dEp, dSl := epFlip(ctx, t, client, "web", "web-0", ips["web-0"], ready)
			t.Logf("flip %d ready=%v: Endpoints %v, EndpointSlice %v", i, ready, dEp.Round(time.Microsecond), dSl.Round(time.Microsecond))
			if dEp > worstEp {
				worstEp = dEp
			}
			if dSl > worstSl {
				worstSl = dSl
			}
		}
	}
	t.Logf("worst readiness flip: Endpoints %v, EndpointSlice %v", worstEp, worstSl)
	if worstEp > time.Second || worstSl > time.Second {
		t.Errorf("a readiness flip took more than a second (Endpoints %v, EndpointSlice %v)", worstEp, worstSl)
	}

	// A terminating pod leaves the Endpoints; its slice endpoint says
	// ready=false, serving=true, terminating=true.
	grace := int64(60)
	if err := client.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		r, nr := epAddresses(ep)
		e, ok := epSliceEndpoint(epSlices(ctx, t, client, "web"), ips["web-1"])
		return !epHas(r, ips["web-1"]) && !epHas(nr, ips["web-1"]) && ok &&
				boolOf(e.Conditions.Ready) == "false" && boolOf(e.Conditions.Serving) == "true" && boolOf(e.Conditions.Terminating) == "true",
			fmt.Sprintf("ready %v not ready %v; slice endpoint found=%v ready=%s serving=%s terminating=%s", r, nr, ok,
				boolOf(e.Conditions.Ready), boolOf(e.Conditions.Serving), boolOf(e.Conditions.Terminating))
	})
	// Gone pods leave both.
	zero := int64(0)
	for _, n := range []string{"web-1", "web-2"} {
		if err := client.CoreV1().Pods("default").Delete(ctx, n, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		r, nr := epAddresses(ep)
		sl := epSlices(ctx, t, client, "web")
		n := 0
		for _, s := range sl {
			n += len(s.Endpoints)
		}
		return strings.Join(r, ",") == ips["web-0"] && len(nr) == 0 && len(sl) == 1 && n == 1,
			fmt.Sprintf("ready %v not ready %v; %d slices with %d endpoints", r, nr, len(sl), n)
	})
	// A new pod shows up.
	if _, err := client.CoreV1().Pods("default").Create(ctx, epPod("web-3", "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	epSetStatus(ctx, t, client, "web-3", "10.244.0.13", true)
	waitFor(t, 10*time.Second, func() (bool, string) {
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		r, _ := epAddresses(ep)
		return strings.Join(r, ",") == "10.244.0.10,10.244.0.13", fmt.Sprintf("ready %v", r)
	})

	// Deleting the service deletes its Endpoints and slices.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		_, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		sl := epSlices(ctx, t, client, "web")
		return apierrors.IsNotFound(err) && len(sl) == 0, fmt.Sprintf("endpoints: %v; %d slices", err, len(sl))
	})
}

// TestEndpointsChapterCustomService: listings 3-10 and 3-11, a service
// without a selector and the Endpoints its user writes. No controller
// touches those Endpoints; the mirroring controller copies them into an
// EndpointSlice, so kubectl describe (which reads slices) lists the address.
func TestEndpointsChapterCustomService(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	client := epClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s.MustKubectl("create", "-f", chapter+"listing-3-10-nodejs-custom-service.yaml")
	listing := strings.ReplaceAll(readFile(t, chapter+"listing-3-11-nodejs-custom-endpoint.yaml"), "<X.X.X.X>", "192.0.2.10")
	s.MustKubectl("create", "-f", writeTemp(t, listing))
	before, err := client.CoreV1().Endpoints("default").Get(ctx, "custom-service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		out, err := s.Kubectl("describe", "service/custom-service")
		return err == nil && matches(`(?m)^Endpoints:\s+192\.0\.2\.10:80\s*$`, out), out
	})
	sl := epSlices(ctx, t, client, "custom-service")
	if len(sl) != 1 {
		t.Fatalf("%d slices for custom-service: %+v", len(sl), sl)
	}
	if sl[0].Labels[discoveryv1.LabelManagedBy] != "endpointslicemirroring-controller.k8s.io" ||
		len(sl[0].OwnerReferences) != 1 || sl[0].OwnerReferences[0].Kind != "Service" || sl[0].OwnerReferences[0].Name != "custom-service" {
		t.Errorf("mirrored slice %s labels %v owners %+v", sl[0].Name, sl[0].Labels, sl[0].OwnerReferences)
	}
	if e, ok := epSliceEndpoint(sl, "192.0.2.10"); !ok || boolOf(e.Conditions.Ready) != "true" || len(sl[0].Ports) != 1 ||
		*sl[0].Ports[0].Port != 80 || *sl[0].Ports[0].Name != "http" {
		t.Errorf("mirrored slice %+v", sl[0])
	}

	// The hand-written Endpoints stay exactly as written.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := client.CoreV1().Endpoints("default").Get(ctx, "custom-service", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cur.ResourceVersion != before.ResourceVersion || len(cur.Labels) != 0 || len(cur.Subsets) != 1 ||
			len(cur.Subsets[0].Addresses) != 1 || cur.Subsets[0].Addresses[0].IP != "192.0.2.10" {
			t.Fatalf("hand-written Endpoints changed: %+v", cur)
		}
		time.Sleep(250 * time.Millisecond)
	}
	out := s.MustKubectl("get", "endpoints", "custom-service")
	if !matches(`custom-service\s+192\.0\.2\.10:80\s`, out) {
		t.Errorf("get endpoints:\n%s", out)
	}

	// The user edits the Endpoints: the mirror follows, in place.
	name := sl[0].Name
	s.MustKubectl("patch", "endpoints", "custom-service", "--type=json",
		"-p", `[{"op":"add","path":"/subsets/0/addresses/-","value":{"ip":"192.0.2.11"}}]`)
	waitFor(t, 10*time.Second, func() (bool, string) {
		sl := epSlices(ctx, t, client, "custom-service")
		_, ok := epSliceEndpoint(sl, "192.0.2.11")
		return len(sl) == 1 && sl[0].Name == name && ok, fmt.Sprintf("slices %+v", sl)
	})

	// The API server's own kubernetes endpoints carry skip-mirror: its
	// slice is the server's, no mirrored one appears.
	for _, s := range epSlices(ctx, t, client, "kubernetes") {
		if s.Labels[discoveryv1.LabelManagedBy] != "wharf-apiserver" {
			t.Errorf("unexpected slice for kubernetes: %s %v", s.Name, s.Labels)
		}
	}
	if ep, err := client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err != nil ||
		ep.Labels["endpoints.kubernetes.io/managed-by"] != "" {
		t.Errorf("kubernetes endpoints: %v %v", err, ep)
	}
}
