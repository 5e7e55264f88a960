package satoken

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
)

// Authenticator authenticates bearer tokens this cluster issued to service
// accounts.
type Authenticator struct {
	Signer *Signer
	// Client looks up the service account and the bound pod, which must
	// still exist with the UIDs the token names.
	Client func() kubernetes.Interface
	Now    func() time.Time
}

// AuthenticateToken implements authenticator.Token. A token that is not
// ours answers (nil, false, nil) so other authenticators may try it.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	c, err := a.Signer.Verify(token, nil, now())
	if errors.Is(err, ErrNotOurs) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	k := c.Kubernetes
	client := a.Client()
	sa, err := client.CoreV1().ServiceAccounts(k.Namespace).Get(ctx, k.ServiceAccount.Name, metav1.GetOptions{})
	if err != nil || string(sa.UID) != k.ServiceAccount.UID {
		return nil, false, fmt.Errorf("service account %s/%s has been deleted", k.Namespace, k.ServiceAccount.Name)
	}
	extra := map[string][]string{}
	if k.Pod != nil {
		pod, err := client.CoreV1().Pods(k.Namespace).Get(ctx, k.Pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && string(pod.UID) != k.Pod.UID) {
			return nil, false, fmt.Errorf("pod %s/%s has been deleted", k.Namespace, k.Pod.Name)
		}
		if err != nil {
			return nil, false, err
		}
		extra["authentication.kubernetes.io/pod-name"] = []string{k.Pod.Name}
		extra["authentication.kubernetes.io/pod-uid"] = []string{k.Pod.UID}
	}
	extra["authentication.kubernetes.io/credential-id"] = []string{"JTI=" + c.ID}
	return &authenticator.Response{
		Audiences: c.Audience,
		User: &user.DefaultInfo{
			Name:   Subject(k.Namespace, k.ServiceAccount.Name),
			UID:    k.ServiceAccount.UID,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + k.Namespace, user.AllAuthenticated},
			Extra:  extra,
		},
	}, true, nil
}
