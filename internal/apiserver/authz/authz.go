// Package authz is Wharf's authorization, as kube-apiserver's with
// --authorization-mode=Node,RBAC: the admin (system:masters) may do
// everything; anyone may read the health and version endpoints; every
// authenticated user may read discovery and OpenAPI and ask who it is and
// what it may do; agents (system:node:<name> in system:nodes) get the node
// authorizer's rules; everyone else gets what RBAC objects grant them.
//
// The package is pure logic over client-go listers, so it is tested without
// a server; New wires it to a shared informer factory.
package authz

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
)

// Authorizer is the union of Wharf's authorizers, in order: system:masters,
// public paths, authenticated users' discovery and self reviews, the node
// authorizer, RBAC. The first to allow or deny decides; if none does, the
// server answers 403 with upstream's message. It is also the union of their
// rule resolvers, for SelfSubjectRulesReview.
type Authorizer struct {
	authorizer.Authorizer
	authorizer.RuleResolver

	// RBAC and Node are the two authorizers backed by listers.
	RBAC *RBAC
	Node *Node
}

// Listers are what the authorizers read.
type Listers struct {
	Roles               rbaclisters.RoleLister
	RoleBindings        rbaclisters.RoleBindingLister
	ClusterRoles        rbaclisters.ClusterRoleLister
	ClusterRoleBindings rbaclisters.ClusterRoleBindingLister
	Pods                corelisters.PodLister
}

// New registers the RBAC and pod informers with factory and returns the
// authorizer reading them. The factory must be started (after New) for RBAC
// and the pod rules to see any objects.
func New(factory informers.SharedInformerFactory) *Authorizer {
	rbac := factory.Rbac().V1()
	return NewFromListers(Listers{
		Roles:               rbac.Roles().Lister(),
		RoleBindings:        rbac.RoleBindings().Lister(),
		ClusterRoles:        rbac.ClusterRoles().Lister(),
		ClusterRoleBindings: rbac.ClusterRoleBindings().Lister(),
		Pods:                factory.Core().V1().Pods().Lister(),
	})
}

// NewFromListers returns the authorizer over the given listers.
func NewFromListers(l Listers) *Authorizer {
	rbac := NewRBAC(l.Roles, l.RoleBindings, l.ClusterRoles, l.ClusterRoleBindings)
	node := NewNode(l.Pods)
	masters := &static{rules: func(u user.Info) []rbacv1.PolicyRule {
		if hasGroup(u, user.SystemPrivilegedGroup) {
			return clusterAdminRules
		}
		return nil
	}}
	public := &static{rules: func(user.Info) []rbacv1.PolicyRule { return publicRules }}
	basic := &static{rules: func(u user.Info) []rbacv1.PolicyRule {
		if isAuthenticated(u) {
			return authenticatedRules
		}
		return nil
	}}
	chain := []union.NamedAuthorizer{
		{AuthorizerName: "SystemMasters", Authorizer: masters},
		{AuthorizerName: "Public", Authorizer: public},
		{AuthorizerName: "BasicUser", Authorizer: basic},
		{AuthorizerName: "Node", Authorizer: node},
		{AuthorizerName: "RBAC", Authorizer: rbac},
	}
	u, err := union.New(chain...)
	if err != nil {
		panic(err) // the names above are distinct and non-empty
	}
	return &Authorizer{
		Authorizer:   u,
		RuleResolver: union.NewRuleResolvers(masters, public, basic, node, rbac),
		RBAC:         rbac,
		Node:         node,
	}
}

// publicRules are what anyone, even without credentials, may read: the
// health checks (with their per-check subpaths) and the version.
var publicRules = []rbacv1.PolicyRule{
	urlRule(verbs("get", "head"), "/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*",
		"/version", "/version/"),
}

// authenticatedRules are upstream's system:discovery and system:basic-user
// roles, which it binds to system:authenticated.
var authenticatedRules = concat(discoveryRules, basicUserRules)

// IsPublicPath reports whether anyone may read p without credentials.
func IsPublicPath(p string) bool {
	return RulesAllow(authorizer.AttributesRecord{Verb: "get", Path: p}, publicRules...)
}

func isAuthenticated(u user.Info) bool {
	return u != nil && u.GetName() != user.Anonymous && !hasGroup(u, user.AllUnauthenticated)
}

// static allows what its rules for the user grant and has no opinion on
// the rest.
type static struct {
	rules func(user.Info) []rbacv1.PolicyRule
}

func (s *static) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	u := a.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if RulesAllow(a, s.rules(u)...) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

func (s *static) ConditionsAwareAuthorize(ctx context.Context, a authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(s.Authorize(ctx, a))
}

func (s *static) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

func (s *static) RulesFor(ctx context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	if u == nil {
		return nil, nil, false, nil
	}
	res, nonRes := ruleInfos(s.rules(u))
	return res, nonRes, false, nil
}
