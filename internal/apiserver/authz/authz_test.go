package authz

import (
	"context"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	corelisters "k8s.io/client-go/listers/core/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
)

// fakeListers returns listers over indexers holding objs.
func fakeListers(t *testing.T, objs ...runtime.Object) Listers {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	roles, rbs, crs, crbs, pods := idx(), idx(), idx(), idx(), idx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *rbacv1.Role:
			err = roles.Add(o)
		case *rbacv1.RoleBinding:
			err = rbs.Add(o)
		case *rbacv1.ClusterRole:
			err = crs.Add(o)
		case *rbacv1.ClusterRoleBinding:
			err = crbs.Add(o)
		case *corev1.Pod:
			err = pods.Add(o)
		default:
			t.Fatalf("unexpected %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return Listers{
		Roles: rbaclisters.NewRoleLister(roles), RoleBindings: rbaclisters.NewRoleBindingLister(rbs),
		ClusterRoles: rbaclisters.NewClusterRoleLister(crs), ClusterRoleBindings: rbaclisters.NewClusterRoleBindingLister(crbs),
		Pods: corelisters.NewPodLister(pods),
	}
}

func bootstrapObjects() []runtime.Object {
	var objs []runtime.Object
	for _, r := range ClusterRoles() {
		objs = append(objs, r)
	}
	for _, b := range ClusterRoleBindings() {
		objs = append(objs, b)
	}
	return objs
}

func res(u user.Info, verb, group, resource, sub, ns, name string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Verb: verb, APIGroup: group, APIVersion: "v1", Resource: resource,
		Subresource: sub, Namespace: ns, Name: name, ResourceRequest: true}
}

func path(u user.Info, verb, p string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Verb: verb, Path: p}
}

func decide(t *testing.T, a authorizer.Authorizer, attrs authorizer.AttributesRecord) (authorizer.Decision, string) {
	t.Helper()
	d, reason, err := a.Authorize(context.Background(), attrs)
	if err != nil {
		t.Fatalf("%+v: %v", attrs, err)
	}
	return d, reason
}

var (
	alice = &user.DefaultInfo{Name: "alice", Groups: []string{"devs", user.AllAuthenticated}}
	anon  = &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}
	admin = &user.DefaultInfo{Name: "wharf-admin", Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}
	n1    = &user.DefaultInfo{Name: "system:node:n1", Groups: []string{NodesGroup, user.AllAuthenticated}}
)

func TestRuleAllows(t *testing.T) {
	r := func(verbs, groups, resources, names []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
	}
	s := func(v ...string) []string { return v }
	cases := []struct {
		name  string
		rule  rbacv1.PolicyRule
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{"exact", r(s("get"), s(""), s("pods"), nil), res(alice, "get", "", "pods", "", "default", "p"), true},
		{"other verb", r(s("get"), s(""), s("pods"), nil), res(alice, "list", "", "pods", "", "default", ""), false},
		{"verb star", r(s("*"), s(""), s("pods"), nil), res(alice, "deletecollection", "", "pods", "", "default", ""), true},
		{"other group", r(s("get"), s("apps"), s("pods"), nil), res(alice, "get", "", "pods", "", "default", "p"), false},
		{"group star", r(s("get"), s("*"), s("deployments"), nil), res(alice, "get", "apps", "deployments", "", "d", "x"), true},
		{"no subresource match", r(s("get"), s(""), s("pods"), nil), res(alice, "get", "", "pods", "status", "d", "p"), false},
		{"subresource", r(s("update"), s(""), s("pods/status"), nil), res(alice, "update", "", "pods", "status", "d", "p"), true},
		{"subresource rule, main request", r(s("get"), s(""), s("pods/status"), nil), res(alice, "get", "", "pods", "", "d", "p"), false},
		{"star subresource", r(s("update"), s("*"), s("*/scale"), nil), res(alice, "update", "apps", "deployments", "scale", "d", "x"), true},
		{"star subresource, other", r(s("update"), s("*"), s("*/scale"), nil), res(alice, "update", "", "pods", "status", "d", "x"), false},
		{"star subresource, main", r(s("update"), s("*"), s("*/scale"), nil), res(alice, "update", "apps", "deployments", "", "d", "x"), false},
		{"resource star covers subresources", r(s("get"), s(""), s("*"), nil), res(alice, "get", "", "pods", "log", "d", "p"), true},
		{"name", r(s("get"), s(""), s("configmaps"), s("a")), res(alice, "get", "", "configmaps", "", "d", "a"), true},
		{"other name", r(s("get"), s(""), s("configmaps"), s("a")), res(alice, "get", "", "configmaps", "", "d", "b"), false},
		{"names never match a list", r(s("list"), s(""), s("configmaps"), s("a")), res(alice, "list", "", "configmaps", "", "d", ""), false},
		{"url exact", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz")}, path(alice, "get", "/healthz"), true},
		{"url exact, other", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz")}, path(alice, "get", "/healthz/etcd"), false},
		{"url prefix", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz/*")}, path(alice, "get", "/healthz/etcd"), true},
		{"url prefix, not parent", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz/*")}, path(alice, "get", "/healthz"), false},
		{"url star", rbacv1.PolicyRule{Verbs: s("*"), NonResourceURLs: s("*")}, path(alice, "post", "/anything"), true},
		{"url verb", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/metrics")}, path(alice, "post", "/metrics"), false},
		{"resource rule, url request", r(s("*"), s("*"), s("*"), nil), path(alice, "get", "/metrics"), false},
		{"url rule, resource request", rbacv1.PolicyRule{Verbs: s("*"), NonResourceURLs: s("*")}, res(alice, "get", "", "pods", "", "d", ""), false},
	}
	for _, c := range cases {
		if got := RuleAllows(c.attrs, &c.rule); got != c.want {
			t.Errorf("%s: RuleAllows = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRBACBindings(t *testing.T) {
	objs := append(bootstrapObjects(),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: "team"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"settings"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-view", Namespace: "default"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sa-cm", Namespace: "team"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cm-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "devs-edit", Namespace: "team"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "devs"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "all-sa-admin", Namespace: "ops"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts:team"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dangling", Namespace: "broken"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "missing"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-reader"},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"nodes"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sa-node-reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "node-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder", Namespace: "team"}}},
	)
	l := fakeListers(t, objs...)
	rbac := NewRBAC(l.Roles, l.RoleBindings, l.ClusterRoles, l.ClusterRoleBindings)
	sa := serviceaccount.UserInfo("team", "builder", "uid")
	otherSA := serviceaccount.UserInfo("other", "builder", "uid")
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{user.AllAuthenticated}}
	cases := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
	}{
		{"masters via cluster-admin binding", res(admin, "delete", "", "nodes", "", "", "n1"), allow},
		{"masters urls", path(admin, "post", "/anything"), allow},
		{"view: list pods in default", res(alice, "list", "", "pods", "", "default", ""), allow},
		{"view: not in kube-system", res(alice, "list", "", "pods", "", "kube-system", ""), noOpinion},
		{"view: not all namespaces", res(alice, "list", "", "pods", "", "", ""), noOpinion},
		{"view: no create", res(alice, "create", "", "pods", "", "default", ""), noOpinion},
		{"view: no secrets", res(alice, "get", "", "secrets", "", "default", "s"), noOpinion},
		{"view: deployments scale", res(alice, "get", "apps", "deployments", "scale", "default", "d"), allow},
		{"edit via group", res(alice, "create", "apps", "deployments", "", "team", ""), allow},
		{"edit: secrets", res(alice, "update", "", "secrets", "", "team", "s"), allow},
		{"edit: no rolebindings", res(alice, "create", rbacGroup, "rolebindings", "", "team", ""), noOpinion},
		{"edit: no endpoints write", res(alice, "create", "", "endpoints", "", "team", ""), noOpinion},
		{"edit: pods/status is view", res(alice, "get", "", "pods", "status", "team", "p"), allow},
		{"discovery via binding", path(alice, "get", "/apis/apps/v1"), allow},
		{"public info for anonymous", path(anon, "get", "/version"), allow},
		{"anonymous no discovery", path(anon, "get", "/api"), noOpinion},
		{"unbound user", res(bob, "get", "", "pods", "", "default", "p"), noOpinion},
		{"sa: role with names", res(sa, "get", "", "configmaps", "", "team", "settings"), allow},
		{"sa: other name", res(sa, "get", "", "configmaps", "", "team", "other"), noOpinion},
		{"sa: same name other namespace", res(otherSA, "get", "", "configmaps", "", "team", "settings"), noOpinion},
		{"sa: cluster binding with namespace", res(sa, "list", "", "nodes", "", "", ""), allow},
		{"sa: namespace group", res(sa, "create", rbacGroup, "rolebindings", "", "ops", ""), allow},
		{"sa: namespace group, other sa", res(otherSA, "create", rbacGroup, "rolebindings", "", "ops", ""), noOpinion},
	}
	for _, c := range cases {
		if got, reason := decide(t, rbac, c.attrs); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, reason, c.want)
		}
	}

	_, reason := decide(t, rbac, res(alice, "list", "", "pods", "", "default", ""))
	if want := `RBAC: allowed by RoleBinding "alice-view/default" of ClusterRole "view" to User "alice"`; reason != want {
		t.Errorf("allow reason %q, want %q", reason, want)
	}
	_, reason = decide(t, rbac, res(sa, "get", "", "configmaps", "", "team", "settings"))
	if want := `RBAC: allowed by RoleBinding "sa-cm/team" of Role "cm-reader" to ServiceAccount "builder/team"`; reason != want {
		t.Errorf("allow reason %q, want %q", reason, want)
	}
	_, reason = decide(t, rbac, res(admin, "get", "", "pods", "", "", ""))
	if want := `RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"`; reason != want {
		t.Errorf("allow reason %q, want %q", reason, want)
	}
	d, reason := decide(t, rbac, res(alice, "get", "", "pods", "", "broken", "p"))
	if d != noOpinion || !strings.Contains(reason, `role.rbac.authorization.k8s.io "missing" not found`) {
		t.Errorf("dangling binding: %v %q", d, reason)
	}

	resRules, nonRes, _, err := rbac.RulesFor(context.Background(), alice, "default")
	if err != nil || len(nonRes) == 0 {
		t.Fatalf("RulesFor: %v, %d non-resource rules", err, len(nonRes))
	}
	found := false
	for _, r := range resRules {
		for _, name := range r.GetResources() {
			found = found || name == "pods"
		}
	}
	if !found {
		t.Errorf("RulesFor(alice, default) lacks the view rules: %v", resRules)
	}
}

// TestAggregationIgnored documents that only a ClusterRole's own rules count.
func TestAggregationIgnored(t *testing.T) {
	l := fakeListers(t,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "agg"},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"x": "y"}}}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "part", Labels: map[string]string{"x": "y"}},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "agg"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}})
	rbac := NewRBAC(l.Roles, l.RoleBindings, l.ClusterRoles, l.ClusterRoleBindings)
	if d, _ := decide(t, rbac, res(alice, "get", "", "pods", "", "default", "p")); d != noOpinion {
		t.Errorf("aggregated role granted %v", d)
	}
}

func boundPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{NodeName: node}}
}

func TestNodeAuthorizer(t *testing.T) {
	l := fakeListers(t, boundPod("default", "mine", "n1"), boundPod("default", "theirs", "n2"), boundPod("default", "pending", ""))
	node := NewNode(l.Pods)
	lease := corev1.NamespaceNodeLease
	noGroup := &user.DefaultInfo{Name: "system:node:n1", Groups: []string{user.AllAuthenticated}}
	cases := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
	}{
		{"not a node", res(alice, "get", "", "nodes", "", "", "n1"), noOpinion},
		{"node name without group", res(noGroup, "update", "", "nodes", "", "", "n1"), noOpinion},
		{"non-resource", path(n1, "get", "/metrics"), noOpinion},

		{"list nodes", res(n1, "list", "", "nodes", "", "", ""), allow},
		{"get other node", res(n1, "get", "", "nodes", "", "", "n2"), allow},
		{"create node (name in body)", res(n1, "create", "", "nodes", "", "", ""), allow},
		{"update own node", res(n1, "update", "", "nodes", "", "", "n1"), allow},
		{"patch own node", res(n1, "patch", "", "nodes", "", "", "n1"), allow},
		{"update own status", res(n1, "update", "", "nodes", "status", "", "n1"), allow},
		{"get own status", res(n1, "get", "", "nodes", "status", "", "n1"), allow},
		{"update other node", res(n1, "update", "", "nodes", "", "", "n2"), deny},
		{"patch other status", res(n1, "patch", "", "nodes", "status", "", "n2"), deny},
		{"delete other node", res(n1, "delete", "", "nodes", "", "", "n2"), deny},
		{"delete own node", res(n1, "delete", "", "nodes", "", "", "n1"), noOpinion},
		{"node proxy", res(n1, "get", "", "nodes", "proxy", "", "n1"), noOpinion},

		{"get own lease", res(n1, "get", coordinationGroup, "leases", "", lease, "n1"), allow},
		{"create lease", res(n1, "create", coordinationGroup, "leases", "", lease, ""), allow},
		{"update own lease", res(n1, "update", coordinationGroup, "leases", "", lease, "n1"), allow},
		{"update other lease", res(n1, "update", coordinationGroup, "leases", "", lease, "n2"), deny},
		{"lease elsewhere", res(n1, "update", coordinationGroup, "leases", "", "kube-system", "n1"), noOpinion},

		{"list pods", res(n1, "list", "", "pods", "", "", ""), allow},
		{"watch pods", res(n1, "watch", "", "pods", "", "default", ""), allow},
		{"status of bound pod", res(n1, "update", "", "pods", "status", "default", "mine"), allow},
		{"patch status of bound pod", res(n1, "patch", "", "pods", "status", "default", "mine"), allow},
		{"get status of bound pod", res(n1, "get", "", "pods", "status", "default", "mine"), allow},
		{"status of other node's pod", res(n1, "update", "", "pods", "status", "default", "theirs"), deny},
		{"status of pending pod", res(n1, "patch", "", "pods", "status", "default", "pending"), deny},
		{"status of missing pod", res(n1, "update", "", "pods", "status", "default", "nope"), deny},
		{"delete bound pod", res(n1, "delete", "", "pods", "", "default", "mine"), allow},
		{"delete other node's pod", res(n1, "delete", "", "pods", "", "default", "theirs"), deny},
		{"update pod spec", res(n1, "update", "", "pods", "", "default", "mine"), noOpinion},
		{"create pod", res(n1, "create", "", "pods", "", "default", ""), noOpinion},
		{"bind pod", res(n1, "create", "", "pods", "binding", "default", "pending"), noOpinion},
		{"pod exec", res(n1, "create", "", "pods", "exec", "default", "mine"), noOpinion},

		{"create event", res(n1, "create", "", "events", "", "default", ""), allow},
		{"patch event", res(n1, "patch", eventsGroup, "events", "", "default", "e"), allow},
		{"delete event", res(n1, "delete", "", "events", "", "default", "e"), noOpinion},

		{"read services", res(n1, "watch", "", "services", "", "", ""), allow},
		{"read endpointslices", res(n1, "list", discoveryGroup, "endpointslices", "", "", ""), allow},
		{"read secrets", res(n1, "get", "", "secrets", "", "default", "s"), allow},
		{"read configmaps", res(n1, "list", "", "configmaps", "", "", ""), allow},
		{"read namespaces", res(n1, "get", "", "namespaces", "", "", "default"), allow},
		{"read pvcs", res(n1, "get", "", "persistentvolumeclaims", "", "default", "c"), allow},
		{"read ingresses", res(n1, "list", networkingGroup, "ingresses", "", "", ""), allow},
		{"read ingressclasses", res(n1, "list", networkingGroup, "ingressclasses", "", "", ""), allow},
		{"write secrets", res(n1, "update", "", "secrets", "", "default", "s"), noOpinion},
		{"write services", res(n1, "create", "", "services", "", "default", ""), noOpinion},
		{"read deployments", res(n1, "list", appsGroup, "deployments", "", "", ""), noOpinion},
		{"read rbac", res(n1, "list", rbacGroup, "roles", "", "", ""), noOpinion},
		{"subjectaccessreview", res(n1, "create", authorizationGroup, "subjectaccessreviews", "", "", ""), allow},
	}
	for _, c := range cases {
		if got, reason := decide(t, node, c.attrs); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, reason, c.want)
		}
	}
	if _, reason := decide(t, node, res(n1, "update", "", "nodes", "", "", "n2")); reason != `node "n1" is not allowed to modify node "n2"` {
		t.Errorf("deny reason: %q", reason)
	}
	if NewNode(nil) == nil {
		t.Fatal("NewNode(nil)")
	}
	if d, _ := decide(t, NewNode(nil), res(n1, "update", "", "pods", "status", "default", "mine")); d != deny {
		t.Errorf("without a pod lister: %v", d)
	}
}

func TestUnion(t *testing.T) {
	l := fakeListers(t, append(bootstrapObjects(), boundPod("default", "theirs", "n2"),
		// A binding that would let every node write every pod status: the
		// node authorizer's denial comes first.
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "nodes-admin"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: NodesGroup}}},
	)...)
	az := NewFromListers(l)
	// Without any RBAC objects the fixed rules still hold.
	bare := NewFromListers(fakeListers(t))
	bob := &user.DefaultInfo{Name: "bob"} // no system:authenticated: the fixed rules go by name
	cases := []struct {
		name  string
		az    *Authorizer
		attrs authorizer.AttributesRecord
		want  authorizer.Decision
	}{
		{"masters", bare, res(admin, "delete", "", "namespaces", "", "", "kube-system"), allow},
		{"masters urls", bare, path(admin, "put", "/whatever"), allow},
		{"public for anonymous", bare, path(anon, "get", "/readyz"), allow},
		{"public subpath", bare, path(anon, "get", "/healthz/etcd"), allow},
		{"public version", bare, path(anon, "get", "/version/"), allow},
		{"anonymous no discovery", bare, path(anon, "get", "/apis"), noOpinion},
		{"anonymous no ssar", bare, res(anon, "create", authorizationGroup, "selfsubjectaccessreviews", "", "", ""), noOpinion},
		{"discovery", bare, path(bob, "get", "/apis/apps/v1"), allow},
		{"openapi", bare, path(bob, "get", "/openapi/v3/apis/apps/v1"), allow},
		{"no discovery writes", bare, path(bob, "post", "/api"), noOpinion},
		{"no metrics", bare, path(bob, "get", "/metrics"), noOpinion},
		{"ssar", bare, res(bob, "create", authorizationGroup, "selfsubjectaccessreviews", "", "", ""), allow},
		{"ssrr", bare, res(bob, "create", authorizationGroup, "selfsubjectrulesreviews", "", "", ""), allow},
		{"ssr", bare, res(bob, "create", authenticationGroup, "selfsubjectreviews", "", "", ""), allow},
		{"no sar", bare, res(bob, "create", authorizationGroup, "subjectaccessreviews", "", "", ""), noOpinion},
		{"no pods", bare, res(bob, "list", "", "pods", "", "default", ""), noOpinion},
		{"node", bare, res(n1, "update", "", "nodes", "status", "", "n1"), allow},
		{"node denial beats RBAC", az, res(n1, "update", "", "pods", "status", "default", "theirs"), deny},
		{"node denial beats RBAC (nodes)", az, res(n1, "update", "", "nodes", "", "", "n2"), deny},
		{"RBAC after node", az, res(n1, "create", "apps", "deployments", "", "default", ""), allow},
	}
	for _, c := range cases {
		if got, reason := decide(t, c.az, c.attrs); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, reason, c.want)
		}
	}
}

// TestForbiddenMessage checks the 403 a client sees when nothing allows a
// request: upstream's message, with nothing appended.
func TestForbiddenMessage(t *testing.T) {
	az := NewFromListers(fakeListers(t, bootstrapObjects()...))
	for _, c := range []struct {
		attrs authorizer.AttributesRecord
		want  string
	}{
		{res(alice, "list", "", "pods", "", "default", ""),
			`pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`},
		{res(alice, "get", "apps", "deployments", "scale", "team", "web"),
			`deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" in the namespace "team"`},
		{res(alice, "list", "", "nodes", "", "", ""),
			`nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope`},
		{res(n1, "update", "", "nodes", "", "", "n2"),
			`nodes "n2" is forbidden: User "system:node:n1" cannot update resource "nodes" in API group "" at the cluster scope: node "n1" is not allowed to modify node "n2"`},
		{path(alice, "get", "/metrics"), `forbidden: User "alice" cannot get path "/metrics"`},
	} {
		d, reason := decide(t, az, c.attrs)
		if d == allow {
			t.Fatalf("%+v allowed", c.attrs)
		}
		if got := responsewriters.ForbiddenStatusError(c.attrs, reason).Error(); got != c.want {
			t.Errorf("message\n got: %s\nwant: %s", got, c.want)
		}
	}
}

func TestRulesFor(t *testing.T) {
	az := NewFromListers(fakeListers(t, bootstrapObjects()...))
	res, nonRes, incomplete, err := az.RulesFor(context.Background(), admin, "default")
	if err != nil || incomplete {
		t.Fatalf("admin: %v %v", err, incomplete)
	}
	star := false
	for _, r := range res {
		star = star || (len(r.GetResources()) == 1 && r.GetResources()[0] == "*" && r.GetVerbs()[0] == "*")
	}
	if !star || len(nonRes) == 0 {
		t.Errorf("admin rules lack */*: %v %v", res, nonRes)
	}
	res, _, incomplete, _ = az.RulesFor(context.Background(), n1, corev1.NamespaceNodeLease)
	if !incomplete || len(res) == 0 {
		t.Errorf("node rules: incomplete=%v, %d rules", incomplete, len(res))
	}
	res, nonRes, _, _ = az.RulesFor(context.Background(), anon, "default")
	if len(res) != 0 || len(nonRes) == 0 {
		t.Errorf("anonymous: %v %v", res, nonRes)
	}
}

func TestIsPublicPath(t *testing.T) {
	for p, want := range map[string]bool{"/healthz": true, "/livez/ping": true, "/readyz": true, "/version": true,
		"/version/": true, "/versions": false, "/healthzz": false, "/api": false, "/": false, "/metrics": false} {
		if got := IsPublicPath(p); got != want {
			t.Errorf("IsPublicPath(%q) = %v", p, got)
		}
	}
}

func TestBootstrapObjects(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	for _, r := range ClusterRoles() {
		roles[r.Name] = r
	}
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user", "system:public-info-viewer"} {
		if roles[name] == nil {
			t.Errorf("no ClusterRole %s", name)
		}
	}
	for _, b := range ClusterRoleBindings() {
		if roles[b.RoleRef.Name] == nil || b.RoleRef.Kind != "ClusterRole" || len(b.Subjects) == 0 {
			t.Errorf("binding %s: %+v", b.Name, b)
		}
	}
	// admin ⊇ edit ⊇ view.
	probe := func(role string, attrs authorizer.AttributesRecord) bool {
		return RulesAllow(attrs, roles[role].Rules...)
	}
	for _, a := range []authorizer.AttributesRecord{
		res(alice, "list", "", "pods", "", "d", ""), res(alice, "get", "apps", "deployments", "", "d", "x"),
		res(alice, "watch", networkingGroup, "ingresses", "", "d", ""),
	} {
		for _, r := range []string{"view", "edit", "admin"} {
			if !probe(r, a) {
				t.Errorf("%s cannot %s %s", r, a.Verb, a.Resource)
			}
		}
	}
	if probe("view", res(alice, "get", "", "secrets", "", "d", "s")) || !probe("edit", res(alice, "get", "", "secrets", "", "d", "s")) {
		t.Error("secrets: view must not, edit must read them")
	}
	if probe("edit", res(alice, "create", rbacGroup, "rolebindings", "", "d", "")) || !probe("admin", res(alice, "create", rbacGroup, "rolebindings", "", "d", "")) {
		t.Error("rolebindings: edit must not, admin must write them")
	}
}

func TestNodeRestriction(t *testing.T) {
	p := NewNodeRestriction()
	nodes := corev1.SchemeGroupVersion.WithResource("nodes")
	leases := coordinationv1.SchemeGroupVersion.WithResource("leases")
	check := func(name string, u user.Info, obj runtime.Object, ns string, want bool) {
		t.Helper()
		m, _ := obj.(metav1.Object)
		gvr := nodes
		if _, ok := obj.(*coordinationv1.Lease); ok {
			gvr = leases
		}
		a := admission.NewAttributesRecord(obj, nil, gvr.GroupVersion().WithKind("x"), ns, m.GetName(), gvr, "",
			admission.Create, &metav1.CreateOptions{}, false, u)
		err := p.Validate(context.Background(), a, nil)
		if (err == nil) != want {
			t.Errorf("%s: %v", name, err)
		}
	}
	check("own node", n1, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, "", true)
	check("other node", n1, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, "", false)
	check("admin", admin, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, "", true)
	check("own lease", n1, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease}}, corev1.NamespaceNodeLease, true)
	check("other lease", n1, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n2", Namespace: corev1.NamespaceNodeLease}}, corev1.NamespaceNodeLease, false)
	check("lease elsewhere", n1, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}}, "default", true)
}
