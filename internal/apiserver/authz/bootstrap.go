package authz

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// API groups named by the bootstrap roles.
const (
	legacyGroup         = ""
	appsGroup           = "apps"
	autoscalingGroup    = "autoscaling"
	batchGroup          = "batch"
	extensionsGroup     = "extensions"
	policyGroup         = "policy"
	networkingGroup     = "networking.k8s.io"
	discoveryGroup      = "discovery.k8s.io"
	coordinationGroup   = "coordination.k8s.io"
	eventsGroup         = "events.k8s.io"
	rbacGroup           = "rbac.authorization.k8s.io"
	authorizationGroup  = "authorization.k8s.io"
	authenticationGroup = "authentication.k8s.io"
)

// clusterAdminRules are cluster-admin's: everything.
var clusterAdminRules = []rbacv1.PolicyRule{
	rule(verbs(rbacv1.VerbAll), groups(rbacv1.APIGroupAll), rbacv1.ResourceAll),
	urlRule(verbs(rbacv1.VerbAll), rbacv1.NonResourceAll),
}

// discoveryRules are system:discovery's: the discovery and OpenAPI documents
// and the health and version endpoints.
var discoveryRules = []rbacv1.PolicyRule{
	urlRule(verbs("get"), "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
		"/readyz", "/version", "/version/"),
}

// basicUserRules are system:basic-user's: a user may ask what it may do and
// who it is.
var basicUserRules = []rbacv1.PolicyRule{
	rule(verbs("create"), groups(authorizationGroup), "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
	rule(verbs("create"), groups(authenticationGroup), "selfsubjectreviews"),
}

// publicInfoViewerRules are system:public-info-viewer's.
var publicInfoViewerRules = []rbacv1.PolicyRule{
	urlRule(verbs("get"), "/healthz", "/version", "/version/", "/readyz", "/livez"),
}

// viewRules are upstream's view role (as aggregated from
// system:aggregate-to-view): read access to the namespaced workload objects,
// not to secrets nor to roles and bindings.
var viewRules = []rbacv1.PolicyRule{
	rule(readVerbs, groups(legacyGroup), "pods", "replicationcontrollers", "replicationcontrollers/scale",
		"serviceaccounts", "services", "services/status", "endpoints", "persistentvolumeclaims",
		"persistentvolumeclaims/status", "configmaps"),
	rule(readVerbs, groups(legacyGroup), "limitranges", "resourcequotas", "bindings", "events", "pods/status",
		"resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
	rule(readVerbs, groups(legacyGroup), "namespaces"),
	rule(readVerbs, groups(discoveryGroup), "endpointslices"),
	rule(readVerbs, groups(appsGroup), "controllerrevisions", "statefulsets", "statefulsets/scale",
		"statefulsets/status", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
		"deployments/status", "replicasets", "replicasets/scale", "replicasets/status"),
	rule(readVerbs, groups(autoscalingGroup), "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
	rule(readVerbs, groups(batchGroup), "jobs", "jobs/status", "cronjobs", "cronjobs/status"),
	rule(readVerbs, groups(extensionsGroup), "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
		"deployments/status", "ingresses", "ingresses/status", "replicasets", "replicasets/scale",
		"replicasets/status", "replicationcontrollers/scale", "networkpolicies"),
	rule(readVerbs, groups(policyGroup), "poddisruptionbudgets", "poddisruptionbudgets/status"),
	rule(readVerbs, groups(networkingGroup), "ingresses", "ingresses/status", "networkpolicies"),
	rule(readVerbs, groups(eventsGroup), "events"),
}

// editRules are upstream's edit role without view's rules (as aggregated
// from system:aggregate-to-edit): read and write the namespaced workload
// objects and secrets; not Endpoints or EndpointSlices (upstream took those
// out of edit), not roles and bindings.
var editRules = []rbacv1.PolicyRule{
	rule(readVerbs, groups(legacyGroup), "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
		"services/proxy"),
	rule(verbs("impersonate"), groups(legacyGroup), "serviceaccounts"),
	rule(writeVerbs, groups(legacyGroup), "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
	rule(verbs("create"), groups(legacyGroup), "pods/eviction"),
	rule(writeVerbs, groups(legacyGroup), "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
		"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
	rule(verbs("create"), groups(legacyGroup), "serviceaccounts/token"),
	rule(writeVerbs, groups(appsGroup), "statefulsets", "statefulsets/scale", "daemonsets", "deployments",
		"deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"),
	rule(writeVerbs, groups(autoscalingGroup), "horizontalpodautoscalers"),
	rule(writeVerbs, groups(batchGroup), "jobs", "cronjobs"),
	rule(writeVerbs, groups(extensionsGroup), "daemonsets", "deployments", "deployments/scale", "deployments/rollback",
		"ingresses", "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"),
	rule(writeVerbs, groups(policyGroup), "poddisruptionbudgets"),
	rule(writeVerbs, groups(networkingGroup), "networkpolicies", "ingresses"),
	rule(writeVerbs, groups(eventsGroup), "events"),
	rule(readWriteVerbs, groups(coordinationGroup), "leases"),
}

// adminRules are what upstream's admin role adds to edit (as aggregated from
// system:aggregate-to-admin): roles and role bindings, and local access
// reviews.
var adminRules = []rbacv1.PolicyRule{
	rule(readWriteVerbs, groups(rbacGroup), "roles", "rolebindings"),
	rule(verbs("create"), groups(authorizationGroup), "localsubjectaccessreviews"),
}

func concat(lists ...[]rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// bootstrapMeta is the metadata upstream gives its default RBAC objects.
func bootstrapMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"},
		Annotations: map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"},
	}
}

// ClusterRoles returns the default cluster roles, named as upstream's:
// cluster-admin, admin, edit, view, system:discovery, system:basic-user and
// system:public-info-viewer. Upstream builds admin, edit and view by
// aggregation (aggregationRule over the system:aggregate-to-* roles); Wharf's
// RBAC authorizer does not aggregate, so these carry their rules directly.
func ClusterRoles() []*rbacv1.ClusterRole {
	role := func(name string, rules ...[]rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{ObjectMeta: bootstrapMeta(name), Rules: concat(rules...)}
	}
	return []*rbacv1.ClusterRole{
		role("cluster-admin", clusterAdminRules),
		role("admin", viewRules, editRules, adminRules),
		role("edit", viewRules, editRules),
		role("view", viewRules),
		role("system:discovery", discoveryRules),
		role("system:basic-user", basicUserRules),
		role("system:public-info-viewer", publicInfoViewerRules),
	}
}

// ClusterRoleBindings returns the default bindings: cluster-admin to the
// system:masters group, system:discovery and system:basic-user to every
// authenticated user, system:public-info-viewer to everyone.
func ClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	bind := func(name string, groupNames ...string) *rbacv1.ClusterRoleBinding {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: bootstrapMeta(name),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
		for _, g := range groupNames {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: g})
		}
		return b
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("cluster-admin", user.SystemPrivilegedGroup),
		bind("system:discovery", user.AllAuthenticated),
		bind("system:basic-user", user.AllAuthenticated),
		bind("system:public-info-viewer", user.AllAuthenticated, user.AllUnauthenticated),
	}
}
