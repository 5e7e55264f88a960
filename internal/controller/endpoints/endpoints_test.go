package endpoints

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "default"

func svc(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": name},
			ClusterIP:  "10.96.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func pod(name, app, ip string, ready bool, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name),
			Labels: map[string]string{"app": app}, ResourceVersion: "1"},
		Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st,
		LastTransitionTime: metav1.NewTime(time.Date(2024, 1, 1, 0, 1, 0, 0, time.UTC))}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func withPorts(ports ...corev1.ContainerPort) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports = ports }
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func addr(p *corev1.Pod) corev1.EndpointAddress {
	node := p.Spec.NodeName
	return corev1.EndpointAddress{IP: p.Status.PodIP, NodeName: &node,
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
}

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

// fixture is a controller on a fake clientset whose informer caches are
// filled by hand, so that each test drives sync directly.
type fixture struct {
	client *fake.Clientset
	ctl    *Controller
	f      informers.SharedInformerFactory
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	var rv atomic.Int64
	rv.Store(100)
	// Give written objects a resourceVersion, as the API server does.
	client.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		var obj runtime.Object
		switch a := a.(type) {
		case k8stesting.CreateAction:
			obj = a.GetObject()
		case k8stesting.UpdateAction:
			obj = a.GetObject()
		default:
			return false, nil, nil
		}
		if m, ok := obj.(metav1.Object); ok {
			m.SetResourceVersion(fmt.Sprint(rv.Add(1)))
			if m.GetUID() == "" {
				m.SetUID(types.UID(fmt.Sprintf("uid-%d", rv.Load())))
			}
		}
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	ctl, err := NewController(client, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{client: client, ctl: ctl, f: f}
	for _, o := range objs {
		fx.cache(t, o)
	}
	return fx
}

func (fx *fixture) cache(t *testing.T, o runtime.Object) {
	t.Helper()
	var err error
	switch o := o.(type) {
	case *corev1.Service:
		err = fx.f.Core().V1().Services().Informer().GetIndexer().Update(o)
	case *corev1.Pod:
		err = fx.f.Core().V1().Pods().Informer().GetIndexer().Update(o)
	case *corev1.Endpoints:
		err = fx.f.Core().V1().Endpoints().Informer().GetIndexer().Update(o)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) sync(t *testing.T, name string) {
	t.Helper()
	fx.client.ClearActions()
	if err := fx.ctl.sync(context.Background(), ns+"/"+name); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// writes returns the create, update and delete actions of the last sync.
func (fx *fixture) writes() []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range fx.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			out = append(out, a)
		}
	}
	return out
}

func (fx *fixture) endpoints(t *testing.T, name string) *corev1.Endpoints {
	t.Helper()
	ep, err := fx.client.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestSyncComputesSubsets(t *testing.T) {
	ready := pod("ready", "web", "10.0.0.1", true)
	unready := pod("unready", "web", "10.0.0.2", false)
	noIP := pod("noip", "web", "", true)
	done := pod("done", "web", "10.0.0.3", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
	failed := pod("failed", "web", "10.0.0.4", false, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })
	term := pod("term", "web", "10.0.0.5", true, terminating)
	other := pod("other", "db", "10.0.0.6", true)
	web8080 := pod("web-a", "web", "10.0.1.1", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 8080}))
	web9090 := pod("web-b", "web", "10.0.1.2", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 9090}))
	webNone := pod("web-c", "web", "10.0.1.3", true, withPorts(corev1.ContainerPort{Name: "metrics", ContainerPort: 9100}))
	webUDP := pod("web-d", "web", "10.0.1.4", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 7070, Protocol: corev1.ProtocolUDP}))
	named := func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("web") }
	headless := func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }
	h1 := pod("h1", "web", "10.0.2.1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "one", "web" })
	h2 := pod("h2", "web", "10.0.2.2", false, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "two", "elsewhere" })
	h1addr := addr(h1)
	h1addr.Hostname = "one"
	twoPorts := func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
			{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")},
		}
	}

	tests := []struct {
		name   string
		svc    *corev1.Service
		pods   []*corev1.Pod
		want   []corev1.EndpointSubset
		labels map[string]string
	}{
		{
			name: "ready and not ready split; no IP, terminal, terminating and unselected pods skipped",
			svc:  svc("web"),
			pods: []*corev1.Pod{ready, unready, noIP, done, failed, term, other},
			want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(ready)},
				NotReadyAddresses: []corev1.EndpointAddress{addr(unready)}, Ports: []corev1.EndpointPort{port("http", 8080)}}},
		},
		{
			name: "publishNotReadyAddresses puts every pod, terminating ones too, in addresses",
			svc:  svc("web", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{ready, unready, term, done},
			want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(ready), addr(unready), addr(term)},
				Ports: []corev1.EndpointPort{port("http", 8080)}}},
		},
		{
			name: "named targetPort resolved per pod; pods lacking it (or with another protocol) left out",
			svc:  svc("web", named),
			pods: []*corev1.Pod{web8080, web9090, webNone, webUDP},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr(web9090)}, Ports: []corev1.EndpointPort{port("http", 9090)}},
				{Addresses: []corev1.EndpointAddress{addr(web8080)}, Ports: []corev1.EndpointPort{port("http", 8080)}},
			},
		},
		{
			name: "a pod lacking one of two ports is only in the other port's subset",
			svc:  svc("web", twoPorts),
			pods: []*corev1.Pod{pod("both", "web", "10.0.3.1", true, withPorts(corev1.ContainerPort{Name: "metrics", ContainerPort: 9100})), pod("one", "web", "10.0.3.2", true)},
		},
		{
			name: "headless: hostname when the subdomain names the service; headless label",
			svc:  svc("web", headless),
			pods: []*corev1.Pod{h1, h2},
			want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{h1addr},
				NotReadyAddresses: []corev1.EndpointAddress{addr(h2)}, Ports: []corev1.EndpointPort{port("http", 8080)}}},
			labels: map[string]string{LabelManagedBy: ControllerName, corev1.IsHeadlessService: ""},
		},
		{
			name:   "headless without ports lists addresses without ports",
			svc:    svc("web", headless, func(s *corev1.Service) { s.Spec.Ports = nil }),
			pods:   []*corev1.Pod{ready},
			want:   []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(ready)}}},
			labels: map[string]string{LabelManagedBy: ControllerName, corev1.IsHeadlessService: ""},
		},
		{
			name: "no pods: empty subsets",
			svc:  svc("web"),
			want: []corev1.EndpointSubset{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{tc.svc}
			for _, p := range tc.pods {
				objs = append(objs, p)
			}
			fx := newFixture(t, objs...)
			fx.sync(t, "web")
			ep := fx.endpoints(t, "web")
			if tc.name == "a pod lacking one of two ports is only in the other port's subset" {
				// Repacked by address set: http has both pods, metrics
				// only the pod with that port.
				if len(ep.Subsets) != 2 {
					t.Fatalf("subsets: %+v", ep.Subsets)
				}
				for _, ss := range ep.Subsets {
					switch {
					case len(ss.Ports) == 1 && ss.Ports[0].Name == "http":
						if len(ss.Addresses) != 2 {
							t.Errorf("http: %+v", ss.Addresses)
						}
					case len(ss.Ports) == 1 && ss.Ports[0].Name == "metrics":
						if len(ss.Addresses) != 1 || ss.Addresses[0].TargetRef.Name != "both" {
							t.Errorf("metrics: %+v", ss.Addresses)
						}
					default:
						t.Errorf("unexpected subset %+v", ss)
					}
				}
				return
			}
			want := SortSubsets(append([]corev1.EndpointSubset{}, tc.want...))
			if !subsetsEqualIgnoreResourceVersion(ep.Subsets, want) {
				t.Errorf("subsets\n got %+v\nwant %+v", ep.Subsets, want)
			}
			wantLabels := tc.labels
			if wantLabels == nil {
				wantLabels = map[string]string{LabelManagedBy: ControllerName}
			}
			if !reflect.DeepEqual(ep.Labels, wantLabels) {
				t.Errorf("labels %v, want %v", ep.Labels, wantLabels)
			}
			if ep.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
				t.Errorf("no %s annotation", corev1.EndpointsLastChangeTriggerTime)
			}
		})
	}
}

func TestSyncWritesOnlyWhatItMust(t *testing.T) {
	labelled := svc("web", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "front"} })
	tests := []struct {
		name  string
		objs  []runtime.Object
		svc   string
		verbs []string
	}{
		{
			name:  "selectorless service: its Endpoints are the user's",
			objs:  []runtime.Object{svc("custom", func(s *corev1.Service) { s.Spec.Selector = nil }), &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: ns}, Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{port("http", 80)}}}}},
			svc:   "custom",
			verbs: nil,
		},
		{
			name:  "ExternalName service: nothing",
			objs:  []runtime.Object{svc("ext", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName })},
			svc:   "ext",
			verbs: nil,
		},
		{
			name:  "the kubernetes service is the API servers'",
			objs:  []runtime.Object{svc("kubernetes", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"x": "y"} })},
			svc:   "kubernetes",
			verbs: nil,
		},
		{
			name:  "deleted service: its managed Endpoints go",
			objs:  []runtime.Object{&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns, Labels: map[string]string{LabelManagedBy: ControllerName}}}},
			svc:   "gone",
			verbs: []string{"delete"},
		},
		{
			name:  "deleted service: Endpoints someone else wrote stay",
			objs:  []runtime.Object{&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns}}},
			svc:   "gone",
			verbs: nil,
		},
		{
			name:  "new service: create",
			objs:  []runtime.Object{labelled, pod("a", "web", "10.0.0.1", true)},
			svc:   "web",
			verbs: []string{"create"},
		},
		{
			name: "user Endpoints under a selector service are taken over",
			objs: []runtime.Object{svc("web"), pod("a", "web", "10.0.0.1", true),
				&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, ResourceVersion: "5"}}},
			svc:   "web",
			verbs: []string{"update"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.objs...)
			fx.sync(t, tc.svc)
			var verbs []string
			for _, a := range fx.writes() {
				verbs = append(verbs, a.GetVerb())
			}
			if !reflect.DeepEqual(verbs, tc.verbs) {
				t.Errorf("writes %v, want %v", verbs, tc.verbs)
			}
		})
	}
	t.Run("labels copied from the service", func(t *testing.T) {
		fx := newFixture(t, labelled)
		fx.sync(t, "web")
		got := fx.endpoints(t, "web").Labels
		want := map[string]string{"tier": "front", LabelManagedBy: ControllerName}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("labels %v, want %v", got, want)
		}
	})
}

// TestNoOpSyncWritesNothing: once the cache holds what the controller
// wrote, syncing again (or after a pod change endpoints do not show)
// writes nothing; a readiness flip writes exactly one update.
func TestNoOpSyncWritesNothing(t *testing.T) {
	a := pod("a", "web", "10.0.0.1", true)
	b := pod("b", "web", "10.0.0.2", false)
	fx := newFixture(t, svc("web"), a, b)
	fx.sync(t, "web")
	if n := len(fx.writes()); n != 1 {
		t.Fatalf("first sync: %d writes", n)
	}
	fx.cache(t, fx.endpoints(t, "web"))

	// Stale cache: the write is not there yet. Simulate by caching an
	// older version; the sync must refuse rather than write again.
	old := fx.endpoints(t, "web").DeepCopy()
	old.ResourceVersion = "1"
	fx.cache(t, old)
	fx.client.ClearActions()
	if err := fx.ctl.sync(context.Background(), ns+"/web"); err == nil {
		t.Errorf("sync from a stale cache succeeded")
	}
	fx.cache(t, fx.endpoints(t, "web"))

	fx.sync(t, "web")
	if w := fx.writes(); len(w) != 0 {
		t.Fatalf("no-op sync wrote %v", w)
	}

	// An annotation change on a pod queues nothing.
	a2 := a.DeepCopy()
	a2.ResourceVersion = "2"
	a2.Annotations = map[string]string{"x": "y"}
	if keys := ServicesToUpdateOnPodChange(fx.ctl.services, a, a2); len(keys) != 0 {
		t.Errorf("annotation change queued %v", keys)
	}

	// A readiness flip queues the service and moves the address.
	b2 := b.DeepCopy()
	b2.ResourceVersion = "2"
	b2.Status.Conditions[0].Status = corev1.ConditionTrue
	b2.Status.Conditions[0].LastTransitionTime = metav1.NewTime(time.Date(2024, 1, 1, 0, 2, 0, 0, time.UTC))
	if keys := ServicesToUpdateOnPodChange(fx.ctl.services, b, b2); len(keys) != 1 {
		t.Errorf("readiness flip queued %v", keys)
	}
	fx.cache(t, b2)
	fx.sync(t, "web")
	w := fx.writes()
	if len(w) != 1 || w[0].GetVerb() != "update" {
		t.Fatalf("flip: writes %v", w)
	}
	ep := fx.endpoints(t, "web")
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 2 || len(ep.Subsets[0].NotReadyAddresses) != 0 {
		t.Errorf("after flip: %+v", ep.Subsets)
	}
	if got := ep.Annotations[corev1.EndpointsLastChangeTriggerTime]; got != "2024-01-01T00:02:00Z" {
		t.Errorf("trigger time %q", got)
	}
	fx.cache(t, ep)
	fx.sync(t, "web")
	if w := fx.writes(); len(w) != 0 {
		t.Fatalf("second no-op sync wrote %v", w)
	}
}

func TestRepackSubsets(t *testing.T) {
	a := corev1.EndpointAddress{IP: "10.0.0.2"}
	b := corev1.EndpointAddress{IP: "10.0.0.1"}
	c := corev1.EndpointAddress{IP: "10.0.0.3"}
	in := []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{a}, Ports: []corev1.EndpointPort{port("p", 1)}},
		{Addresses: []corev1.EndpointAddress{b}, Ports: []corev1.EndpointPort{port("p", 1)}},
		{NotReadyAddresses: []corev1.EndpointAddress{a}, Ports: []corev1.EndpointPort{port("q", 2)}},
		{Addresses: []corev1.EndpointAddress{c}, Ports: []corev1.EndpointPort{port("p", 1), port("q", 2)}},
	}
	got := RepackSubsets(in)
	// Ports p: a, b, c ready; q: a not ready, c ready -> two subsets.
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	for i := 0; i < 20; i++ {
		again := RepackSubsets(in)
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("not deterministic:\n%+v\n%+v", got, again)
		}
	}
	for _, ss := range got {
		switch {
		case len(ss.Ports) == 1 && ss.Ports[0].Name == "p":
			if len(ss.Addresses) != 3 || ss.Addresses[0].IP != "10.0.0.1" || ss.Addresses[2].IP != "10.0.0.3" {
				t.Errorf("p: %+v", ss)
			}
		case len(ss.Ports) == 1 && ss.Ports[0].Name == "q":
			if len(ss.Addresses) != 1 || len(ss.NotReadyAddresses) != 1 {
				t.Errorf("q: %+v", ss)
			}
		default:
			t.Errorf("unexpected subset %+v", ss)
		}
	}
}

// TestControllerReactsToReadiness runs the controller on informers: a
// readiness flip written through UpdateStatus shows in the Endpoints.
func TestControllerReactsToReadiness(t *testing.T) {
	client := fake.NewSimpleClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	ctl, err := NewController(client, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	go ctl.Run(ctx, 2)
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := pod("a", "web", "10.0.0.1", false)
	p.ResourceVersion = ""
	p, err = client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func(*corev1.Endpoints) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
			if err == nil && cond(ep) {
				return
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	wait("not ready address", func(ep *corev1.Endpoints) bool {
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 1
	})
	p.Status.Conditions[0].Status = corev1.ConditionTrue
	p.ResourceVersion = "2"
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("ready address", func(ep *corev1.Endpoints) bool {
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 0
	})
	if err := client.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints of deleted service still there: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTruncate(t *testing.T) {
	var ready, notReady []corev1.EndpointAddress
	for i := 0; i < 900; i++ {
		ready = append(ready, corev1.EndpointAddress{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250)})
	}
	for i := 0; i < 300; i++ {
		notReady = append(notReady, corev1.EndpointAddress{IP: fmt.Sprintf("10.2.%d.%d", i/250, i%250)})
	}
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: ready, NotReadyAddresses: notReady}}}
	if !truncateEndpoints(ep) {
		t.Fatal("not truncated")
	}
	if len(ep.Subsets[0].Addresses) != 900 || len(ep.Subsets[0].NotReadyAddresses) != 100 {
		t.Errorf("kept %d ready, %d not ready", len(ep.Subsets[0].Addresses), len(ep.Subsets[0].NotReadyAddresses))
	}
}

// BenchmarkPodFlip is the controller's share of a readiness flip with 1,000
// services of one pod each in the namespace: finding the services of the
// pod and syncing the one that selects it (the write goes to a fake).
func BenchmarkPodFlip(b *testing.B) {
	var objs []runtime.Object
	var pods []*corev1.Pod
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		objs = append(objs, svc(name))
		p := pod(fmt.Sprintf("pod-%04d", i), name, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), false)
		pods = append(pods, p)
		objs = append(objs, p)
	}
	fx := newFixture(&testing.T{}, objs...)
	ctx := context.Background()
	idx := fx.f.Core().V1().Endpoints().Informer().GetIndexer()
	sync := func(key string) {
		if err := fx.ctl.sync(ctx, key); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, name, _ := strings.Cut(key, "/")
		ep, err := fx.client.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		_ = idx.Update(ep)
		b.StartTimer()
	}
	for i := 0; i < 1000; i++ {
		sync(ns + "/" + fmt.Sprintf("svc-%04d", i))
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		old := pods[n%1000]
		cur := old.DeepCopy()
		cur.ResourceVersion = fmt.Sprint(n + 10)
		if cur.Status.Conditions[0].Status == corev1.ConditionTrue {
			cur.Status.Conditions[0].Status = corev1.ConditionFalse
		} else {
			cur.Status.Conditions[0].Status = corev1.ConditionTrue
		}
		pods[n%1000] = cur
		b.StopTimer()
		_ = fx.f.Core().V1().Pods().Informer().GetIndexer().Update(cur)
		b.StartTimer()
		for k := range ServicesToUpdateOnPodChange(fx.ctl.services, old, cur) {
			sync(k)
		}
	}
}
