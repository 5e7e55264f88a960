package review

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// fakeAuthorizer allows alice to get pods in default, denies "delete", and
// has no opinion otherwise; it records the last attributes.
type fakeAuthorizer struct {
	authorizer.AuthorizerFunc
	last authorizer.Attributes
}

func newFake() *fakeAuthorizer {
	f := &fakeAuthorizer{}
	f.AuthorizerFunc = func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		f.last = a
		switch {
		case a.GetVerb() == "delete":
			return authorizer.DecisionDeny, "no deleting", nil
		case a.GetUser().GetName() == "alice" && a.GetVerb() == "get" && a.GetResource() == "pods" && a.GetNamespace() == "default":
			return authorizer.DecisionAllow, "alice reads pods", nil
		case a.GetUser().GetName() == "alice" && a.GetPath() == "/healthz":
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	}
	return f
}

func (f *fakeAuthorizer) RulesFor(ctx context.Context, u user.Info, ns string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	return []authorizer.ResourceRuleInfo{&authorizer.DefaultResourceRuleInfo{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
		[]authorizer.NonResourceRuleInfo{&authorizer.DefaultNonResourceRuleInfo{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
		false, nil
}

var alice = &user.DefaultInfo{Name: "alice", UID: "1", Groups: []string{"devs", user.AllAuthenticated},
	Extra: map[string][]string{"k": {"v"}}}

func asAlice() context.Context {
	return genericapirequest.WithUser(context.Background(), alice)
}

func TestStorageShape(t *testing.T) {
	m := AuthorizationStorage(newFake())
	for _, name := range []string{"selfsubjectaccessreviews", "subjectaccessreviews", "localsubjectaccessreviews", "selfsubjectrulesreviews"} {
		s, ok := m[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		if _, ok := s.(rest.Creater); !ok {
			t.Errorf("%s is not a Creater", name)
		}
		if _, ok := s.(rest.SingularNameProvider); !ok {
			t.Errorf("%s has no singular name", name)
		}
		if s.(rest.Scoper).NamespaceScoped() != (name == "localsubjectaccessreviews") {
			t.Errorf("%s scope", name)
		}
	}
	if _, ok := AuthorizationStorage(authorizer.AuthorizerFunc(nil))["selfsubjectrulesreviews"]; ok {
		t.Error("rules review without a rule resolver")
	}
	if _, ok := AuthenticationStorage()["selfsubjectreviews"].(rest.Creater); !ok {
		t.Error("no selfsubjectreviews")
	}
}

func TestSelfSubjectAccessReview(t *testing.T) {
	f := newFake()
	r := AuthorizationStorage(f)["selfsubjectaccessreviews"].(rest.Creater)
	create := func(spec authorizationv1.SelfSubjectAccessReviewSpec) (*authorizationv1.SelfSubjectAccessReview, error) {
		out, err := r.Create(asAlice(), &authorizationv1.SelfSubjectAccessReview{Spec: spec}, nil, nil)
		if err != nil {
			return nil, err
		}
		return out.(*authorizationv1.SelfSubjectAccessReview), nil
	}
	got, err := create(authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
		Namespace: "default", Verb: "get", Resource: "pods"}})
	if err != nil || !got.Status.Allowed || got.Status.Denied || got.Status.Reason != "alice reads pods" {
		t.Errorf("get pods: %v %+v", err, got)
	}
	if f.last.GetAPIVersion() != "*" || !f.last.IsResourceRequest() || f.last.GetUser().GetName() != "alice" {
		t.Errorf("attributes: %+v", f.last)
	}
	got, _ = create(authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
		Namespace: "default", Verb: "delete", Resource: "pods"}})
	if got.Status.Allowed || !got.Status.Denied || got.Status.Reason != "no deleting" {
		t.Errorf("delete: %+v", got.Status)
	}
	got, _ = create(authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
		Namespace: "kube-system", Verb: "get", Resource: "pods"}})
	if got.Status.Allowed || got.Status.Denied {
		t.Errorf("no opinion: %+v", got.Status)
	}
	got, _ = create(authorizationv1.SelfSubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{
		Path: "/healthz", Verb: "get"}})
	if !got.Status.Allowed || f.last.IsResourceRequest() {
		t.Errorf("non-resource: %+v", got.Status)
	}
	if _, err := create(authorizationv1.SelfSubjectAccessReviewSpec{}); !apierrors.IsInvalid(err) {
		t.Errorf("empty spec: %v", err)
	}
	if _, err := r.Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/", Verb: "get"}}}, nil, nil); !apierrors.IsBadRequest(err) {
		t.Errorf("no user: %v", err)
	}
}

func TestSubjectAccessReviews(t *testing.T) {
	f := newFake()
	storage := AuthorizationStorage(f)
	sar := storage["subjectaccessreviews"].(rest.Creater)
	spec := authorizationv1.SubjectAccessReviewSpec{User: "alice", Groups: []string{"devs"}, Extra: map[string]authorizationv1.ExtraValue{"k": {"v"}},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "pods"}}
	// The requester is someone else: the spec's user is asked about.
	ctx := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "admin"})
	out, err := sar.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, nil, nil)
	if err != nil || !out.(*authorizationv1.SubjectAccessReview).Status.Allowed {
		t.Fatalf("SAR: %v %+v", err, out)
	}
	if u := f.last.GetUser(); u.GetName() != "alice" || len(u.GetGroups()) != 1 || u.GetExtra()["k"][0] != "v" {
		t.Errorf("user: %+v", u)
	}
	if _, err := sar.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: spec.ResourceAttributes}}, nil, nil); !apierrors.IsInvalid(err) {
		t.Errorf("no user or group: %v", err)
	}

	lsar := storage["localsubjectaccessreviews"].(rest.Creater)
	inDefault := genericapirequest.WithNamespace(ctx, "default")
	out, err = lsar.Create(inDefault, &authorizationv1.LocalSubjectAccessReview{Spec: spec}, nil, nil)
	if err != nil || !out.(*authorizationv1.LocalSubjectAccessReview).Status.Allowed {
		t.Errorf("LSAR: %v %+v", err, out)
	}
	if _, err := lsar.Create(genericapirequest.WithNamespace(ctx, "other"), &authorizationv1.LocalSubjectAccessReview{Spec: spec}, nil, nil); !apierrors.IsBadRequest(err) {
		t.Errorf("LSAR namespace mismatch: %v", err)
	}
}

func TestSelfSubjectRulesReview(t *testing.T) {
	r := AuthorizationStorage(newFake())["selfsubjectrulesreviews"].(rest.Creater)
	out, err := r.Create(asAlice(), &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := out.(*authorizationv1.SelfSubjectRulesReview).Status
	if len(st.ResourceRules) != 1 || st.ResourceRules[0].Resources[0] != "pods" || len(st.NonResourceRules) != 1 {
		t.Errorf("status: %+v", st)
	}
	if _, err := r.Create(asAlice(), &authorizationv1.SelfSubjectRulesReview{}, nil, nil); !apierrors.IsBadRequest(err) {
		t.Errorf("no namespace: %v", err)
	}
}

func TestSelfSubjectReview(t *testing.T) {
	r := AuthenticationStorage()["selfsubjectreviews"].(rest.Creater)
	out, err := r.Create(asAlice(), &authenticationv1.SelfSubjectReview{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := out.(*authenticationv1.SelfSubjectReview).Status.UserInfo
	if info.Username != "alice" || info.UID != "1" || len(info.Groups) != 2 || info.Extra["k"][0] != "v" {
		t.Errorf("user info: %+v", info)
	}
}
