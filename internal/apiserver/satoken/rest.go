package satoken

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// TokenREST serves serviceaccounts/token (TokenRequest), as kubelet and
// `kubectl create token` use it.
type TokenREST struct {
	Signer *Signer
	// ServiceAccounts and Pods read the objects a token names.
	ServiceAccounts rest.Getter
	Pods            rest.Getter
	Now             func() time.Time
}

// New returns an empty TokenRequest.
func (r *TokenREST) New() runtime.Object { return &authenticationv1.TokenRequest{} }

// Destroy does nothing.
func (r *TokenREST) Destroy() {}

// NamespaceScoped is true: tokens are per service account.
func (r *TokenREST) NamespaceScoped() bool { return true }

// GroupVersionKind says the subresource speaks authentication.k8s.io/v1.
func (r *TokenREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")
}

// Create issues a token for the service account name, bound to a pod when
// the request says so. Upstream's limits: at least 10 minutes, one hour by
// default.
func (r *TokenREST) Create(ctx context.Context, name string, obj runtime.Object,
	createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	req, ok := obj.(*authenticationv1.TokenRequest)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a TokenRequest: %T", obj))
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	ns := genericapirequest.NamespaceValue(ctx)
	ttl := int64(3600)
	if req.Spec.ExpirationSeconds != nil {
		ttl = *req.Spec.ExpirationSeconds
	}
	if ttl < 600 {
		return nil, apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenRequest").GroupKind(), name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "expirationSeconds"), ttl, "may not specify a duration less than 10 minutes")})
	}
	saObj, err := r.ServiceAccounts.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sa := saObj.(*corev1.ServiceAccount)
	claim := KubernetesClaim{Namespace: ns, ServiceAccount: Ref{Name: sa.Name, UID: string(sa.UID)}}
	if b := req.Spec.BoundObjectRef; b != nil {
		if b.Kind != "Pod" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind a token to a %s", b.Kind))
		}
		podObj, err := r.Pods.Get(ctx, b.Name, &metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		pod := podObj.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), b.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record", b.UID))
		}
		claim.Pod = &Ref{Name: pod.Name, UID: string(pod.UID)}
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	out := req.DeepCopy()
	if len(options.DryRun) > 0 {
		return out, nil
	}
	tok, exp, err := r.Signer.Issue(claim, req.Spec.Audiences, time.Duration(ttl)*time.Second, now())
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if len(out.Spec.Audiences) == 0 {
		out.Spec.Audiences = []string{Issuer}
	}
	out.Spec.ExpirationSeconds = &ttl
	out.Status = authenticationv1.TokenRequestStatus{Token: tok, ExpirationTimestamp: metav1.NewTime(exp)}
	return out, nil
}
