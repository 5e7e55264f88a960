package authz

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	corelisters "k8s.io/client-go/listers/core/v1"
)

const (
	// NodeUserPrefix starts the user name of a node's credential.
	NodeUserPrefix = "system:node:"
	// NodesGroup is the group every node's credential is in.
	NodesGroup = "system:nodes"
)

// NodeName returns the node a user is, if it is one: a user named
// system:node:<name> in the group system:nodes.
func NodeName(u user.Info) (string, bool) {
	if u == nil || !strings.HasPrefix(u.GetName(), NodeUserPrefix) || !hasGroup(u, NodesGroup) {
		return "", false
	}
	name := strings.TrimPrefix(u.GetName(), NodeUserPrefix)
	return name, name != ""
}

// Node authorizes agents, upstream's node authorizer and NodeRestriction
// admission plugin in one, simplified:
//
//   - read (get, list, watch) nodes, services, endpoints, endpointslices,
//     pods, namespaces, configmaps, secrets, persistentvolumeclaims, leases,
//     ingresses and ingressclasses. Upstream lets a node get only the
//     secrets, configmaps and claims its own pods refer to; Wharf lets it
//     read all of them, since the agent also serves Ingresses (whose TLS
//     secrets no pod refers to) and watches rather than gets;
//   - create, update and patch its own Node and get, update and patch its
//     nodes/status;
//   - create, update and patch its own Lease (kube-node-lease/<node>);
//   - get, update and patch the status of, and delete, the pods bound to it
//     (spec.nodeName), looked up in the pod lister;
//   - create, update and patch events (core and events.k8s.io);
//   - create subjectaccessreviews, as upstream's node rules allow.
//
// Writes to another node's Node, nodes/status or node Lease, and to pods not
// bound to the node (or not found), are denied outright, as NodeRestriction
// refuses them whatever RBAC says. Everything else (pods/binding, creating
// pods, ...) gets no opinion, so only RBAC could grant it.
//
// A create carries no name in its URL, so creating a Node or node Lease of
// another name is not refused here; upstream's NodeRestriction admission
// refuses it (NodeRestriction in this package is that check).
type Node struct {
	pods corelisters.PodLister
}

var (
	_ authorizer.Authorizer   = (*Node)(nil)
	_ authorizer.RuleResolver = (*Node)(nil)
)

// NewNode returns a node authorizer that finds pods in pods.
func NewNode(pods corelisters.PodLister) *Node { return &Node{pods: pods} }

// nodeReadable are the resources a node may get, list and watch.
var nodeReadable = map[[2]string]bool{
	{legacyGroup, "nodes"}: true, {legacyGroup, "services"}: true, {legacyGroup, "endpoints"}: true,
	{legacyGroup, "pods"}: true, {legacyGroup, "namespaces"}: true, {legacyGroup, "configmaps"}: true,
	{legacyGroup, "secrets"}: true, {legacyGroup, "persistentvolumeclaims"}: true,
	{discoveryGroup, "endpointslices"}: true, {coordinationGroup, "leases"}: true,
	{networkingGroup, "ingresses"}: true, {networkingGroup, "ingressclasses"}: true,
}

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

// isWrite is every verb but the reads (and the non-mutating ones).
func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

var (
	allow     = authorizer.DecisionAllow
	deny      = authorizer.DecisionDeny
	noOpinion = authorizer.DecisionNoOpinion
)

// Authorize decides the requests of node users; others get no opinion.
func (n *Node) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	node, ok := NodeName(a.GetUser())
	if !ok || !a.IsResourceRequest() {
		return noOpinion, "", nil
	}
	verb, group, resource, sub, name := a.GetVerb(), a.GetAPIGroup(), a.GetResource(), a.GetSubresource(), a.GetName()
	switch {
	case group == legacyGroup && resource == "nodes":
		return n.authorizeNode(node, verb, sub, name)
	case group == coordinationGroup && resource == "leases" && sub == "":
		return n.authorizeLease(node, verb, a.GetNamespace(), name)
	case group == legacyGroup && resource == "pods":
		return n.authorizePod(node, verb, sub, a.GetNamespace(), name)
	case (group == legacyGroup || group == eventsGroup) && resource == "events" && sub == "":
		if verb == "create" || verb == "update" || verb == "patch" {
			return allow, "", nil
		}
		return noOpinion, "", nil
	case group == authorizationGroup && resource == "subjectaccessreviews" && sub == "" && verb == "create":
		return allow, "", nil
	case group == legacyGroup && resource == "serviceaccounts" && sub == "token" && verb == "create":
		// The projected service-account token of the pods a node runs.
		return allow, "", nil
	case sub == "" && isRead(verb) && nodeReadable[[2]string{group, resource}]:
		return allow, "", nil
	}
	return noOpinion, "", nil
}

func (n *Node) authorizeNode(node, verb, sub, name string) (authorizer.Decision, string, error) {
	if sub != "" && sub != "status" {
		return noOpinion, "", nil
	}
	if isRead(verb) {
		return allow, "", nil
	}
	// A create's name is in its body, not its URL: "" here.
	own := name == node || (name == "" && verb == "create" && sub == "")
	if !own {
		if isWrite(verb) {
			return deny, fmt.Sprintf("node %q is not allowed to modify %s", node, describe("node", name)), nil
		}
		return noOpinion, "", nil
	}
	switch {
	case sub == "" && (verb == "create" || verb == "update" || verb == "patch"):
		return allow, "", nil
	case sub == "status" && (verb == "update" || verb == "patch"):
		return allow, "", nil
	}
	return noOpinion, "", nil
}

// describe names another node's object, or all of them for a collection.
func describe(what, name string) string {
	if name == "" {
		return "other nodes' objects"
	}
	return fmt.Sprintf("%s %q", what, name)
}

func (n *Node) authorizeLease(node, verb, namespace, name string) (authorizer.Decision, string, error) {
	if isRead(verb) {
		return allow, "", nil
	}
	if namespace != corev1.NamespaceNodeLease {
		return noOpinion, "", nil
	}
	own := name == node || (name == "" && verb == "create")
	if !own {
		if isWrite(verb) {
			return deny, fmt.Sprintf("node %q is not allowed to modify %s", node, describe("the lease of node", name)), nil
		}
		return noOpinion, "", nil
	}
	if verb == "create" || verb == "update" || verb == "patch" {
		return allow, "", nil
	}
	return noOpinion, "", nil
}

func (n *Node) authorizePod(node, verb, sub, namespace, name string) (authorizer.Decision, string, error) {
	switch {
	case sub == "" && isRead(verb):
		return allow, "", nil
	case sub == "" && verb == "delete", sub == "status" && (verb == "get" || verb == "update" || verb == "patch"):
		if name == "" {
			return noOpinion, "", nil
		}
		return n.boundPod(node, namespace, name)
	}
	return noOpinion, "", nil
}

// boundPod allows the request if the pod is bound to node and denies it
// otherwise, including when the pod is not found.
func (n *Node) boundPod(node, namespace, name string) (authorizer.Decision, string, error) {
	if n.pods == nil {
		return deny, "no pod lister", nil
	}
	pod, err := n.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return deny, fmt.Sprintf("node %q can only access pods bound to it; pod %q not found", node, namespace+"/"+name), nil
	}
	if err != nil {
		return deny, "", err
	}
	if pod.Spec.NodeName != node {
		return deny, fmt.Sprintf("node %q can only access pods bound to it; pod %q is bound to %q",
			node, namespace+"/"+name, pod.Spec.NodeName), nil
	}
	return allow, "", nil
}

// ConditionsAwareAuthorize is Authorize: the node authorizer has no
// conditional decisions.
func (n *Node) ConditionsAwareAuthorize(ctx context.Context, a authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(n.Authorize(ctx, a))
}

// EvaluateConditions fails closed: there are no conditional decisions.
func (n *Node) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor lists what Authorize grants a node as rules. The pod rules (status
// and delete of bound pods) cannot be written as rules and are left out, so
// the list is marked incomplete.
func (n *Node) RulesFor(ctx context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	node, ok := NodeName(u)
	if !ok {
		return nil, nil, false, nil
	}
	res, nonRes := ruleInfos(nodeRules(node, namespace))
	return res, nonRes, true, nil
}

func nodeRules(node, namespace string) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		rule(readVerbs, groups(legacyGroup), "nodes", "services", "endpoints", "pods", "namespaces", "configmaps",
			"secrets", "persistentvolumeclaims"),
		rule(readVerbs, groups(discoveryGroup), "endpointslices"),
		rule(readVerbs, groups(coordinationGroup), "leases"),
		rule(readVerbs, groups(networkingGroup), "ingresses", "ingressclasses"),
		rule(verbs("create"), groups(legacyGroup), "nodes"),
		{Verbs: verbs("update", "patch"), APIGroups: groups(legacyGroup), Resources: []string{"nodes", "nodes/status"},
			ResourceNames: []string{node}},
		{Verbs: verbs("get"), APIGroups: groups(legacyGroup), Resources: []string{"nodes/status"}},
		rule(verbs("create", "update", "patch"), groups(legacyGroup, eventsGroup), "events"),
		rule(verbs("create"), groups(authorizationGroup), "subjectaccessreviews"),
		rule(verbs("create"), groups(legacyGroup), "serviceaccounts/token"),
	}
	if namespace == corev1.NamespaceNodeLease {
		rules = append(rules,
			rule(verbs("create"), groups(coordinationGroup), "leases"),
			rbacv1.PolicyRule{Verbs: verbs("update", "patch"), APIGroups: groups(coordinationGroup),
				Resources: []string{"leases"}, ResourceNames: []string{node}})
	}
	return rules
}
