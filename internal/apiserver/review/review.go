// Package review serves the access and identity reviews: the create-only
// authorization.k8s.io/v1 selfsubjectaccessreviews, subjectaccessreviews,
// localsubjectaccessreviews and selfsubjectrulesreviews, which ask the
// server's authorizer about a user (`kubectl auth can-i`), and
// authentication.k8s.io/v1 selfsubjectreviews, which return the requesting
// user (`kubectl auth whoami`). Nothing is stored.
package review

import (
	"context"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// AuthorizationStorage returns the authorization.k8s.io/v1 resources asking
// az. selfsubjectrulesreviews is served only if az is also a
// authorizer.RuleResolver.
func AuthorizationStorage(az authorizer.Authorizer) map[string]rest.Storage {
	m := map[string]rest.Storage{
		"selfsubjectaccessreviews":  &SelfSubjectAccessReviewREST{authorizer: az},
		"subjectaccessreviews":      &SubjectAccessReviewREST{authorizer: az},
		"localsubjectaccessreviews": &LocalSubjectAccessReviewREST{authorizer: az},
	}
	if rr, ok := az.(authorizer.RuleResolver); ok {
		m["selfsubjectrulesreviews"] = &SelfSubjectRulesReviewREST{resolver: rr}
	}
	return m
}

// AuthenticationStorage returns the authentication.k8s.io/v1 resources.
func AuthenticationStorage() map[string]rest.Storage {
	return map[string]rest.Storage{"selfsubjectreviews": &SelfSubjectReviewREST{}}
}

// createOnly is the part every review shares: nothing to destroy, cluster
// scope unless said otherwise.
type createOnly struct{}

// Destroy does nothing: reviews hold no resources.
func (createOnly) Destroy() {}

// NamespaceScoped is false: reviews are cluster-scoped (but the local one).
func (createOnly) NamespaceScoped() bool { return false }

func requestUser(ctx context.Context) (user.Info, error) {
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	return u, nil
}

func validate(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc) error {
	if createValidation == nil {
		return nil
	}
	return createValidation(ctx, obj.DeepCopyObject())
}

// SelfSubjectAccessReviewREST answers whether the requesting user may do
// what the spec says.
type SelfSubjectAccessReviewREST struct {
	createOnly
	authorizer authorizer.Authorizer
}

var (
	_ rest.Creater              = (*SelfSubjectAccessReviewREST)(nil)
	_ rest.Scoper               = (*SelfSubjectAccessReviewREST)(nil)
	_ rest.SingularNameProvider = (*SelfSubjectAccessReviewREST)(nil)
)

// New returns an empty SelfSubjectAccessReview.
func (r *SelfSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectAccessReview{}
}

// GetSingularName is selfsubjectaccessreview.
func (r *SelfSubjectAccessReviewREST) GetSingularName() string { return "selfsubjectaccessreview" }

// Create runs the authorizer for the requesting user and fills the status.
func (r *SelfSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest("not a SelfSubjectAccessReview")
	}
	spec := review.Spec
	if errs := validateAttributes(spec.ResourceAttributes, spec.NonResourceAttributes, field.NewPath("spec")); len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", errs)
	}
	if err := validate(ctx, obj, createValidation); err != nil {
		return nil, err
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	review.Status = decide(ctx, r.authorizer, attributesFrom(u, spec.ResourceAttributes, spec.NonResourceAttributes))
	return review, nil
}

// SubjectAccessReviewREST answers whether the user in the spec may do what
// the spec says.
type SubjectAccessReviewREST struct {
	createOnly
	authorizer authorizer.Authorizer
}

var (
	_ rest.Creater              = (*SubjectAccessReviewREST)(nil)
	_ rest.Scoper               = (*SubjectAccessReviewREST)(nil)
	_ rest.SingularNameProvider = (*SubjectAccessReviewREST)(nil)
)

// New returns an empty SubjectAccessReview.
func (r *SubjectAccessReviewREST) New() runtime.Object { return &authorizationv1.SubjectAccessReview{} }

// GetSingularName is subjectaccessreview.
func (r *SubjectAccessReviewREST) GetSingularName() string { return "subjectaccessreview" }

// Create runs the authorizer for the spec's user and fills the status.
func (r *SubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest("not a SubjectAccessReview")
	}
	if errs := validateSubjectSpec(&review.Spec, field.NewPath("spec")); len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview").GroupKind(), "", errs)
	}
	if err := validate(ctx, obj, createValidation); err != nil {
		return nil, err
	}
	review.Status = decide(ctx, r.authorizer, subjectAttributes(&review.Spec))
	return review, nil
}

// LocalSubjectAccessReviewREST is SubjectAccessReviewREST within one
// namespace: the spec's namespace must be the request's.
type LocalSubjectAccessReviewREST struct {
	createOnly
	authorizer authorizer.Authorizer
}

var (
	_ rest.Creater              = (*LocalSubjectAccessReviewREST)(nil)
	_ rest.Scoper               = (*LocalSubjectAccessReviewREST)(nil)
	_ rest.SingularNameProvider = (*LocalSubjectAccessReviewREST)(nil)
)

// New returns an empty LocalSubjectAccessReview.
func (r *LocalSubjectAccessReviewREST) New() runtime.Object {
	return &authorizationv1.LocalSubjectAccessReview{}
}

// NamespaceScoped is true: the review is posted in the namespace it asks about.
func (r *LocalSubjectAccessReviewREST) NamespaceScoped() bool { return true }

// GetSingularName is localsubjectaccessreview.
func (r *LocalSubjectAccessReviewREST) GetSingularName() string { return "localsubjectaccessreview" }

// Create runs the authorizer for the spec's user in the request's namespace.
func (r *LocalSubjectAccessReviewREST) Create(ctx context.Context, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.LocalSubjectAccessReview)
	if !ok {
		return nil, apierrors.NewBadRequest("not a LocalSubjectAccessReview")
	}
	gk := authorizationv1.SchemeGroupVersion.WithKind("LocalSubjectAccessReview").GroupKind()
	errs := validateSubjectSpec(&review.Spec, field.NewPath("spec"))
	if review.Spec.ResourceAttributes == nil && review.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "nonResourceAttributes"), review.Spec.NonResourceAttributes,
			"disallowed on this kind of request"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(gk, "", errs)
	}
	ns := genericapirequest.NamespaceValue(ctx)
	if ns == "" {
		return nil, apierrors.NewBadRequest("namespace is required on this type")
	}
	if review.Spec.ResourceAttributes.Namespace != ns {
		return nil, apierrors.NewBadRequest("spec.resourceAttributes.namespace must match namespace: " + ns)
	}
	if err := validate(ctx, obj, createValidation); err != nil {
		return nil, err
	}
	review.Status = decide(ctx, r.authorizer, subjectAttributes(&review.Spec))
	return review, nil
}

// SelfSubjectRulesReviewREST lists what the requesting user may do in a
// namespace.
type SelfSubjectRulesReviewREST struct {
	createOnly
	resolver authorizer.RuleResolver
}

var (
	_ rest.Creater              = (*SelfSubjectRulesReviewREST)(nil)
	_ rest.Scoper               = (*SelfSubjectRulesReviewREST)(nil)
	_ rest.SingularNameProvider = (*SelfSubjectRulesReviewREST)(nil)
)

// New returns an empty SelfSubjectRulesReview.
func (r *SelfSubjectRulesReviewREST) New() runtime.Object {
	return &authorizationv1.SelfSubjectRulesReview{}
}

// GetSingularName is selfsubjectrulesreview.
func (r *SelfSubjectRulesReviewREST) GetSingularName() string { return "selfsubjectrulesreview" }

// Create fills the status with the requesting user's rules in
// spec.namespace.
func (r *SelfSubjectRulesReviewREST) Create(ctx context.Context, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review, ok := obj.(*authorizationv1.SelfSubjectRulesReview)
	if !ok {
		return nil, apierrors.NewBadRequest("not a SelfSubjectRulesReview")
	}
	if review.Spec.Namespace == "" {
		return nil, apierrors.NewBadRequest("no namespace on request")
	}
	if err := validate(ctx, obj, createValidation); err != nil {
		return nil, err
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	res, nonRes, incomplete, err := r.resolver.RulesFor(ctx, u, review.Spec.Namespace)
	review.Status = authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    []authorizationv1.ResourceRule{},
		NonResourceRules: []authorizationv1.NonResourceRule{},
		Incomplete:       incomplete,
	}
	for _, ri := range res {
		review.Status.ResourceRules = append(review.Status.ResourceRules, authorizationv1.ResourceRule{
			Verbs: ri.GetVerbs(), APIGroups: ri.GetAPIGroups(), Resources: ri.GetResources(), ResourceNames: ri.GetResourceNames()})
	}
	for _, ri := range nonRes {
		review.Status.NonResourceRules = append(review.Status.NonResourceRules, authorizationv1.NonResourceRule{
			Verbs: ri.GetVerbs(), NonResourceURLs: ri.GetNonResourceURLs()})
	}
	if err != nil {
		review.Status.EvaluationError = err.Error()
	}
	return review, nil
}

// SelfSubjectReviewREST returns the requesting user's identity.
type SelfSubjectReviewREST struct {
	createOnly
}

var (
	_ rest.Creater              = (*SelfSubjectReviewREST)(nil)
	_ rest.Scoper               = (*SelfSubjectReviewREST)(nil)
	_ rest.SingularNameProvider = (*SelfSubjectReviewREST)(nil)
)

// New returns an empty SelfSubjectReview.
func (r *SelfSubjectReviewREST) New() runtime.Object { return &authenticationv1.SelfSubjectReview{} }

// GetSingularName is selfsubjectreview.
func (r *SelfSubjectReviewREST) GetSingularName() string { return "selfsubjectreview" }

// Create returns the requesting user's name, uid, groups and extra.
func (r *SelfSubjectReviewREST) Create(ctx context.Context, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	if _, ok := obj.(*authenticationv1.SelfSubjectReview); !ok {
		return nil, apierrors.NewBadRequest("not a SelfSubjectReview")
	}
	if err := validate(ctx, obj, createValidation); err != nil {
		return nil, err
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	out := &authenticationv1.SelfSubjectReview{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Now())},
		Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
			Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}},
	}
	if extra := u.GetExtra(); len(extra) > 0 {
		out.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range extra {
			out.Status.UserInfo.Extra[k] = v
		}
	}
	return out, nil
}

// decide runs the authorizer and reports its decision as a review status.
func decide(ctx context.Context, az authorizer.Authorizer, attrs authorizer.AttributesRecord) authorizationv1.SubjectAccessReviewStatus {
	decision, reason, err := az.Authorize(ctx, attrs)
	status := authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	return status
}

// attributesFrom makes the authorizer's attributes of a review, as upstream:
// an empty version means every version.
func attributesFrom(u user.Info, res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
	if res == nil {
		return authorizer.AttributesRecord{User: u, Verb: nonRes.Verb, Path: nonRes.Path}
	}
	version := res.Version
	if version == "" {
		version = "*"
	}
	return authorizer.AttributesRecord{
		User: u, Verb: res.Verb, Namespace: res.Namespace, APIGroup: res.Group, APIVersion: version,
		Resource: res.Resource, Subresource: res.Subresource, Name: res.Name, ResourceRequest: true,
	}
}

func subjectAttributes(spec *authorizationv1.SubjectAccessReviewSpec) authorizer.AttributesRecord {
	u := &user.DefaultInfo{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return attributesFrom(u, spec.ResourceAttributes, spec.NonResourceAttributes)
}

// validateAttributes requires exactly one of the two attribute kinds.
func validateAttributes(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case res != nil && nonRes != nil:
		errs = append(errs, field.Invalid(p.Child("nonResourceAttributes"), nonRes,
			"cannot be specified in combination with resourceAttributes"))
	case res == nil && nonRes == nil:
		errs = append(errs, field.Invalid(p.Child("resourceAttributes"), res,
			"exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	return errs
}

func validateSubjectSpec(spec *authorizationv1.SubjectAccessReviewSpec, p *field.Path) field.ErrorList {
	errs := validateAttributes(spec.ResourceAttributes, spec.NonResourceAttributes, p)
	if spec.User == "" && len(spec.Groups) == 0 {
		errs = append(errs, field.Invalid(p.Child("user"), spec.User, "at least one of user or group must be specified"))
	}
	return errs
}
