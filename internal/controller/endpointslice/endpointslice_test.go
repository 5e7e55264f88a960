package endpointslice

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
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
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func withPorts(ports ...corev1.ContainerPort) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports = ports }
}

// fixture drives a controller on a fake clientset whose informer caches are
// filled by hand.
type fixture struct {
	client *fake.Clientset
	f      informers.SharedInformerFactory
}

func newClient(objs ...runtime.Object) *fake.Clientset {
	client := fake.NewSimpleClientset(objs...)
	var n atomic.Int64
	n.Store(100)
	// Names from generateName, UIDs and resourceVersions, as the API server.
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
		m, ok := obj.(metav1.Object)
		if !ok {
			return false, nil, nil
		}
		v := n.Add(1)
		if a.GetVerb() == "create" {
			if m.GetName() == "" && m.GetGenerateName() != "" {
				m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), v))
			}
			m.SetUID(types.UID(fmt.Sprintf("uid-%d", v)))
		}
		m.SetResourceVersion(fmt.Sprint(v))
		return false, nil, nil
	})
	return client
}

func (fx *fixture) cache(t *testing.T, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			err = fx.f.Core().V1().Services().Informer().GetIndexer().Update(o)
		case *corev1.Pod:
			err = fx.f.Core().V1().Pods().Informer().GetIndexer().Update(o)
		case *corev1.Endpoints:
			err = fx.f.Core().V1().Endpoints().Informer().GetIndexer().Update(o)
		case *discoveryv1.EndpointSlice:
			err = fx.f.Discovery().V1().EndpointSlices().Informer().GetIndexer().Update(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (fx *fixture) uncache(t *testing.T, o runtime.Object) {
	t.Helper()
	var err error
	switch o := o.(type) {
	case *corev1.Pod:
		err = fx.f.Core().V1().Pods().Informer().GetIndexer().Delete(o)
	case *corev1.Service:
		err = fx.f.Core().V1().Services().Informer().GetIndexer().Delete(o)
	case *discoveryv1.EndpointSlice:
		err = fx.f.Discovery().V1().EndpointSlices().Informer().GetIndexer().Delete(o)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// refresh replaces the slice cache with what the fake API holds, as the
// informer would.
func (fx *fixture) refresh(t *testing.T) []discoveryv1.EndpointSlice {
	t.Helper()
	idx := fx.f.Discovery().V1().EndpointSlices().Informer().GetIndexer()
	for _, o := range idx.List() {
		_ = idx.Delete(o)
	}
	list, err := fx.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		_ = idx.Add(&list.Items[i])
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func (fx *fixture) writes() []string {
	var out []string
	for _, a := range fx.client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			out = append(out, a.GetVerb())
		}
	}
	return out
}

type sliceFixture struct {
	fixture
	ctl *Controller
}

func newSliceFixture(t *testing.T, max int, objs ...runtime.Object) *sliceFixture {
	t.Helper()
	client := newClient()
	f := informers.NewSharedInformerFactory(client, 0)
	ctl, err := NewController(client, f, nil, max)
	if err != nil {
		t.Fatal(err)
	}
	fx := &sliceFixture{fixture: fixture{client: client, f: f}, ctl: ctl}
	fx.cache(t, objs...)
	return fx
}

// sync runs one sync and refreshes the slice cache from the fake API.
func (fx *sliceFixture) sync(t *testing.T, name string) []discoveryv1.EndpointSlice {
	t.Helper()
	fx.client.ClearActions()
	if err := fx.ctl.sync(context.Background(), ns+"/"+name); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return fx.refresh(t)
}

func endpointsOf(slices []discoveryv1.EndpointSlice) map[string]discoveryv1.Endpoint {
	out := map[string]discoveryv1.Endpoint{}
	for _, s := range slices {
		for _, e := range s.Endpoints {
			out[e.TargetRef.Name] = e
		}
	}
	return out
}

func conds(ready, serving, terminating bool) discoveryv1.EndpointConditions {
	return discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}
}

func TestSliceContent(t *testing.T) {
	ready := pod("ready", "web", "10.0.0.1", true)
	unready := pod("unready", "web", "10.0.0.2", false)
	termReady := pod("term", "web", "10.0.0.3", true, terminating)
	noIP := pod("noip", "web", "", true)
	done := pod("done", "web", "10.0.0.4", true, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })
	tests := []struct {
		name  string
		svc   *corev1.Service
		pods  []*corev1.Pod
		conds map[string]discoveryv1.EndpointConditions
	}{
		{
			name: "conditions: ready = Ready and not terminating, serving = Ready, terminating = deletionTimestamp",
			svc:  svc("web"),
			pods: []*corev1.Pod{ready, unready, termReady, noIP, done},
			conds: map[string]discoveryv1.EndpointConditions{
				"ready": conds(true, true, false), "unready": conds(false, false, false), "term": conds(false, true, true)},
		},
		{
			name: "publishNotReadyAddresses: ready always true",
			svc:  svc("web", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{ready, unready, termReady},
			conds: map[string]discoveryv1.EndpointConditions{
				"ready": conds(true, true, false), "unready": conds(true, false, false), "term": conds(true, true, true)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{tc.svc}
			for _, p := range tc.pods {
				objs = append(objs, p)
			}
			fx := newSliceFixture(t, 0, objs...)
			slices := fx.sync(t, "web")
			if len(slices) != 1 {
				t.Fatalf("%d slices", len(slices))
			}
			s := slices[0]
			if s.GenerateName != "web-" || s.AddressType != discoveryv1.AddressTypeIPv4 {
				t.Errorf("generateName %q addressType %s", s.GenerateName, s.AddressType)
			}
			wantLabels := map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ControllerName}
			if !reflect.DeepEqual(s.Labels, wantLabels) {
				t.Errorf("labels %v", s.Labels)
			}
			if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Service" || s.OwnerReferences[0].UID != "uid-web" ||
				s.OwnerReferences[0].Controller == nil || !*s.OwnerReferences[0].Controller {
				t.Errorf("owner references %+v", s.OwnerReferences)
			}
			if len(s.Ports) != 1 || *s.Ports[0].Name != "http" || *s.Ports[0].Port != 8080 || *s.Ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("ports %+v", s.Ports)
			}
			eps := endpointsOf(slices)
			if len(eps) != len(tc.conds) {
				t.Errorf("endpoints %v", eps)
			}
			for name, want := range tc.conds {
				got, ok := eps[name]
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if !reflect.DeepEqual(got.Conditions, want) {
					t.Errorf("%s: conditions ready=%v serving=%v terminating=%v", name, *got.Conditions.Ready, *got.Conditions.Serving, *got.Conditions.Terminating)
				}
				if got.NodeName == nil || *got.NodeName != "node-1" || got.TargetRef.Kind != "Pod" || got.TargetRef.UID != types.UID("uid-"+name) {
					t.Errorf("%s: nodeName/targetRef %+v %+v", name, got.NodeName, got.TargetRef)
				}
			}
			if s.Annotations[corev1.EndpointsLastChangeTriggerTime] == "" {
				t.Errorf("no trigger time annotation")
			}
		})
	}
}

func TestNamedPortsHeadlessAndFamilies(t *testing.T) {
	named := func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("web") }
	t.Run("named targetPort: pods with different numbers in different slices", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("web", named),
			pod("a", "web", "10.0.0.1", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 8080})),
			pod("b", "web", "10.0.0.2", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 8080})),
			pod("c", "web", "10.0.0.3", true, withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 9090})),
			pod("d", "web", "10.0.0.4", true))
		slices := fx.sync(t, "web")
		byPort := map[string][]string{}
		for _, s := range slices {
			k := "none"
			if len(s.Ports) == 1 {
				k = fmt.Sprint(*s.Ports[0].Port)
			}
			for _, e := range s.Endpoints {
				byPort[k] = append(byPort[k], e.TargetRef.Name)
			}
		}
		want := map[string][]string{"8080": {"a", "b"}, "9090": {"c"}, "none": {"d"}}
		if !reflect.DeepEqual(byPort, want) {
			t.Errorf("by port %v, want %v", byPort, want)
		}
	})
	t.Run("headless: hostname and headless label", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("web", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			pod("a", "web", "10.0.0.1", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "one", "web" }),
			pod("b", "web", "10.0.0.2", true, func(p *corev1.Pod) { p.Spec.Hostname = "two" }))
		slices := fx.sync(t, "web")
		if len(slices) != 1 {
			t.Fatalf("%d slices", len(slices))
		}
		if _, ok := slices[0].Labels[corev1.IsHeadlessService]; !ok {
			t.Errorf("labels %v", slices[0].Labels)
		}
		eps := endpointsOf(slices)
		if h := eps["a"].Hostname; h == nil || *h != "one" {
			t.Errorf("a: hostname %v", h)
		}
		if h := eps["b"].Hostname; h != nil {
			t.Errorf("b: hostname %q", *h)
		}
	})
	t.Run("dual stack: one slice per family", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("web", func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		}), pod("a", "web", "10.0.0.1", true, func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}
		}))
		slices := fx.sync(t, "web")
		got := map[discoveryv1.AddressType]string{}
		for _, s := range slices {
			if len(s.Endpoints) == 1 {
				got[s.AddressType] = s.Endpoints[0].Addresses[0]
			}
		}
		want := map[discoveryv1.AddressType]string{discoveryv1.AddressTypeIPv4: "10.0.0.1", discoveryv1.AddressTypeIPv6: "fd00::1"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v", got)
		}
	})
}

// TestSplittingAndChurn: 250 pods fill slices of 100, 100 and 50; one more
// pod goes into an existing slice (an update, no create); a readiness flip
// is one update; a sync with nothing new writes nothing; pods leaving empty
// a slice delete it.
func TestSplittingAndChurn(t *testing.T) {
	s := svc("web")
	var pods []*corev1.Pod
	for i := 0; i < 250; i++ {
		pods = append(pods, pod(fmt.Sprintf("p%03d", i), "web", fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), true))
	}
	objs := []runtime.Object{s}
	for _, p := range pods {
		objs = append(objs, p)
	}
	fx := newSliceFixture(t, 0, objs...)
	slices := fx.sync(t, "web")
	var sizes []int
	for _, sl := range slices {
		sizes = append(sizes, len(sl.Endpoints))
	}
	sort.Ints(sizes)
	if !reflect.DeepEqual(sizes, []int{50, 100, 100}) {
		t.Fatalf("slice sizes %v", sizes)
	}
	if w := fx.writes(); !reflect.DeepEqual(w, []string{"create", "create", "create"}) {
		t.Errorf("writes %v", w)
	}

	fx.sync(t, "web")
	if w := fx.writes(); len(w) != 0 {
		t.Errorf("no-op sync wrote %v", w)
	}

	extra := pod("p999", "web", "10.0.9.9", true)
	fx.cache(t, extra)
	slices = fx.sync(t, "web")
	if w := fx.writes(); !reflect.DeepEqual(w, []string{"update"}) {
		t.Errorf("one more pod: writes %v", w)
	}
	if len(slices) != 3 || len(endpointsOf(slices)) != 251 {
		t.Errorf("%d slices, %d endpoints", len(slices), len(endpointsOf(slices)))
	}

	flip := pods[7].DeepCopy()
	flip.Status.Conditions[0].Status = corev1.ConditionFalse
	fx.cache(t, flip)
	slices = fx.sync(t, "web")
	if w := fx.writes(); !reflect.DeepEqual(w, []string{"update"}) {
		t.Errorf("readiness flip: writes %v", w)
	}
	if e := endpointsOf(slices)[flip.Name]; *e.Conditions.Ready || *e.Conditions.Serving {
		t.Errorf("flipped pod still ready: %+v", e.Conditions)
	}

	// Remove the pods of one slice: it is deleted, the others stay.
	var victim discoveryv1.EndpointSlice
	for _, sl := range slices {
		if len(sl.Endpoints) == 100 {
			victim = sl
			break
		}
	}
	for _, e := range victim.Endpoints {
		fx.uncache(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: e.TargetRef.Name}})
	}
	slices = fx.sync(t, "web")
	if w := fx.writes(); !reflect.DeepEqual(w, []string{"delete"}) {
		t.Errorf("emptied slice: writes %v", w)
	}
	if len(slices) != 2 || len(endpointsOf(slices)) != 151 {
		t.Errorf("%d slices, %d endpoints", len(slices), len(endpointsOf(slices)))
	}
}

func TestPlaceholderStaleAndSelectorless(t *testing.T) {
	t.Run("no pods: one placeholder, kept", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("web"))
		slices := fx.sync(t, "web")
		if len(slices) != 1 || len(slices[0].Endpoints) != 0 || len(slices[0].Ports) != 0 {
			t.Fatalf("slices %+v", slices)
		}
		fx.sync(t, "web")
		if w := fx.writes(); len(w) != 0 {
			t.Errorf("second sync wrote %v", w)
		}
		// A first pod replaces the placeholder in place.
		fx.cache(t, pod("a", "web", "10.0.0.1", true))
		after := fx.sync(t, "web")
		if w := fx.writes(); !reflect.DeepEqual(w, []string{"update"}) {
			t.Errorf("first pod: writes %v", w)
		}
		if len(after) != 1 || after[0].Name != slices[0].Name || len(after[0].Endpoints) != 1 {
			t.Errorf("after first pod %+v", after)
		}
	})
	t.Run("slices of an old incarnation are replaced", func(t *testing.T) {
		old := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "web-old", Namespace: ns, UID: "old",
				Labels:          map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ControllerName},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "previous"}}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		fx := newSliceFixture(t, 0, svc("web"), pod("a", "web", "10.0.0.1", true))
		if _, err := fx.client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), old, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		fx.refresh(t)
		slices := fx.sync(t, "web")
		if len(slices) != 1 || slices[0].Name == "web-old" || len(slices[0].Endpoints) != 1 {
			t.Errorf("slices %+v", slices)
		}
	})
	t.Run("selectorless service: no slices from this controller", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("custom", func(s *corev1.Service) { s.Spec.Selector = nil }))
		if slices := fx.sync(t, "custom"); len(slices) != 0 || len(fx.writes()) != 0 {
			t.Errorf("slices %v writes %v", slices, fx.writes())
		}
	})
	t.Run("deleted service: its slices go", func(t *testing.T) {
		s := svc("web")
		fx := newSliceFixture(t, 0, s, pod("a", "web", "10.0.0.1", true))
		fx.sync(t, "web")
		fx.uncache(t, s)
		if slices := fx.sync(t, "web"); len(slices) != 0 {
			t.Errorf("slices left %+v", slices)
		}
	})
	t.Run("a stale cache makes the sync retry instead of writing twice", func(t *testing.T) {
		fx := newSliceFixture(t, 0, svc("web"), pod("a", "web", "10.0.0.1", true))
		fx.sync(t, "web")
		idx := fx.f.Discovery().V1().EndpointSlices().Informer().GetIndexer()
		for _, o := range idx.List() {
			_ = idx.Delete(o)
		}
		fx.client.ClearActions()
		if err := fx.ctl.sync(context.Background(), ns+"/web"); err == nil {
			t.Errorf("sync on a cache without our slice succeeded (writes %v)", fx.writes())
		}
	})
}

// TestControllerEventDriven runs the controller on informers and flips a
// pod's readiness through UpdateStatus.
func TestControllerEventDriven(t *testing.T) {
	client := newClient()
	f := informers.NewSharedInformerFactory(client, 0)
	ctl, err := NewController(client, f, nil, 0)
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
	if p, err = client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			list, _ := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
			if list != nil {
				e, ok := endpointsOf(list.Items)["a"]
				if ok && ptr.Deref(e.Conditions.Ready, false) == want {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("endpoint never ready=%v", want)
	}
	waitReady(false)
	p.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(true)
}
