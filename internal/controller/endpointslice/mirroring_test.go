package endpointslice

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
)

type mirrorFixture struct {
	fixture
	ctl *MirroringController
}

func newMirrorFixture(t *testing.T, objs ...runtime.Object) *mirrorFixture {
	t.Helper()
	client := newClient()
	f := informers.NewSharedInformerFactory(client, 0)
	ctl, err := NewMirroringController(client, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	fx := &mirrorFixture{fixture: fixture{client: client, f: f}, ctl: ctl}
	fx.cache(t, objs...)
	return fx
}

func (fx *mirrorFixture) sync(t *testing.T, name string) []discoveryv1.EndpointSlice {
	t.Helper()
	fx.client.ClearActions()
	if err := fx.ctl.sync(context.Background(), ns+"/"+name); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return fx.refresh(t)
}

// The chapter's listings 3-10 and 3-11: a selectorless LoadBalancer service
// and the Endpoints its user writes.
func customService() *corev1.Service {
	return svc("custom-service", func(s *corev1.Service) {
		s.Spec.Selector = nil
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}
	})
}

func customEndpoints(ips ...string) *corev1.Endpoints {
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "custom-service", Namespace: ns, ResourceVersion: "7"},
		Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}}
	for _, ip := range ips {
		ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: ip})
	}
	return ep
}

func TestMirroring(t *testing.T) {
	t.Run("listing 3-11 is mirrored", func(t *testing.T) {
		fx := newMirrorFixture(t, customService(), customEndpoints("192.0.2.10"))
		slices := fx.sync(t, "custom-service")
		if len(slices) != 1 {
			t.Fatalf("%d slices", len(slices))
		}
		s := slices[0]
		wantLabels := map[string]string{discoveryv1.LabelServiceName: "custom-service", discoveryv1.LabelManagedBy: MirroringControllerName}
		if !reflect.DeepEqual(s.Labels, wantLabels) {
			t.Errorf("labels %v", s.Labels)
		}
		if s.GenerateName != "custom-service-" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("generateName %q addressType %s", s.GenerateName, s.AddressType)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Service" || s.OwnerReferences[0].UID != "uid-custom-service" {
			t.Errorf("owners %+v", s.OwnerReferences)
		}
		if len(s.Ports) != 1 || *s.Ports[0].Name != "http" || *s.Ports[0].Port != 80 || *s.Ports[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("ports %+v", s.Ports)
		}
		if len(s.Endpoints) != 1 || s.Endpoints[0].Addresses[0] != "192.0.2.10" || !*s.Endpoints[0].Conditions.Ready {
			t.Errorf("endpoints %+v", s.Endpoints)
		}
		fx.sync(t, "custom-service")
		if w := fx.writes(); len(w) != 0 {
			t.Errorf("no-op sync wrote %v", w)
		}
		// A changed address is an update of the same slice.
		fx.cache(t, customEndpoints("192.0.2.10", "192.0.2.11"))
		after := fx.sync(t, "custom-service")
		if w := fx.writes(); !reflect.DeepEqual(w, []string{"update"}) {
			t.Errorf("change: writes %v", w)
		}
		if len(after) != 1 || after[0].Name != s.Name || len(after[0].Endpoints) != 2 {
			t.Errorf("after change %+v", after)
		}
		// Deleting the Endpoints deletes the mirror.
		if err := fx.f.Core().V1().Endpoints().Informer().GetIndexer().Delete(customEndpoints()); err != nil {
			t.Fatal(err)
		}
		if left := fx.sync(t, "custom-service"); len(left) != 0 {
			t.Errorf("left %+v", left)
		}
	})

	tests := []struct {
		name  string
		objs  []runtime.Object
		count int
	}{
		{
			name: "skip-mirror label (the API server's kubernetes endpoints)",
			objs: []runtime.Object{svc("kubernetes", func(s *corev1.Service) { s.Spec.Selector = nil }),
				&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: ns,
					Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
					Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}},
						Ports: []corev1.EndpointPort{{Name: "https", Port: 6443}}}}}},
			count: 0,
		},
		{
			name: "service with a selector: the EndpointSlice controller's business",
			objs: []runtime.Object{svc("custom-service"), customEndpoints("192.0.2.10")},
		},
		{
			name: "no service",
			objs: []runtime.Object{customEndpoints("192.0.2.10")},
		},
		{
			name:  "IPv4 and IPv6 addresses in two slices; invalid ones skipped",
			objs:  []runtime.Object{customService(), customEndpoints("192.0.2.10", "2001:db8::10", "not-an-ip")},
			count: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newMirrorFixture(t, tc.objs...)
			name := tc.objs[len(tc.objs)-1].(*corev1.Endpoints).Name
			if slices := fx.sync(t, name); len(slices) != tc.count {
				t.Errorf("%d slices, want %d: %+v", len(slices), tc.count, slices)
			}
		})
	}

	t.Run("not ready addresses mirrored as not ready; labels and annotations copied", func(t *testing.T) {
		ep := customEndpoints("192.0.2.10")
		ep.Subsets[0].NotReadyAddresses = []corev1.EndpointAddress{{IP: "192.0.2.20"}}
		ep.Labels = map[string]string{"team": "a"}
		ep.Annotations = map[string]string{"note": "x", corev1.LastAppliedConfigAnnotation: "{}"}
		fx := newMirrorFixture(t, customService(), ep)
		slices := fx.sync(t, "custom-service")
		if len(slices) != 1 || len(slices[0].Endpoints) != 2 {
			t.Fatalf("slices %+v", slices)
		}
		ready := map[string]bool{}
		for _, e := range slices[0].Endpoints {
			ready[e.Addresses[0]] = *e.Conditions.Ready
		}
		if !reflect.DeepEqual(ready, map[string]bool{"192.0.2.10": true, "192.0.2.20": false}) {
			t.Errorf("ready %v", ready)
		}
		if slices[0].Labels["team"] != "a" || slices[0].Annotations["note"] != "x" {
			t.Errorf("labels %v annotations %v", slices[0].Labels, slices[0].Annotations)
		}
		if _, ok := slices[0].Annotations[corev1.LastAppliedConfigAnnotation]; ok {
			t.Errorf("last-applied copied")
		}
	})
}
