package apiserver

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/informers"

	"github.com/wharf-io/wharf/internal/apiserver/authz"
)

// newAuthenticator accepts client certificates signed by the cluster CA (the
// certificate's CN is the user, its O the groups, to which system:authenticated
// is added as upstream does) and service-account bearer tokens. A request without valid credentials is
// anonymous only for the public paths; anywhere else it gets 401
// Unauthorized, as kube-apiserver with --anonymous-auth=false.
func newAuthenticator(ca dynamiccertificates.CAContentProvider, tokens authenticator.Token) authenticator.Request {
	certs := group.NewAuthenticatedGroupAdder(x509request.NewDynamic(ca.VerifyOptions, x509request.CommonNameUserConversion))
	bearer := bearertoken.New(tokens)
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := certs.AuthenticateRequest(req)
		if ok && err == nil {
			return resp, true, nil
		}
		if strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
			if resp, ok, err := bearer.AuthenticateRequest(req); ok || err != nil {
				return resp, ok, err
			}
		}
		if authz.IsPublicPath(req.URL.Path) {
			return &authenticator.Response{User: &user.DefaultInfo{
				Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}}, true, nil
		}
		return resp, ok, err
	})
}

// newAuthorizer is upstream's Node,RBAC authorization with Wharf's fixed
// rules in front (see package authz): system:masters may do everything,
// anyone the public paths, authenticated users discovery, OpenAPI and their
// self reviews; agents get the node authorizer's rules and everyone else
// what RBAC objects grant. It registers the RBAC and pod informers with
// factory, which the server starts after it has started serving.
func newAuthorizer(factory informers.SharedInformerFactory) *authz.Authorizer {
	return authz.New(factory)
}

// withVersion serves /version with the Kubernetes release whose API Wharf
// implements, so clients' version-skew checks pass.
func withVersion(next http.Handler) http.Handler {
	info := version.Info{
		Major: "1", Minor: strings.Split(KubernetesVersion, ".")[1], GitVersion: KubernetesVersion + "+wharf",
		GitTreeState: "clean", GoVersion: runtime.Version(), Compiler: runtime.Compiler,
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	body, _ := json.MarshalIndent(info, "", "  ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path == "/version" || r.URL.Path == "/version/") && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func nopLogger() *zap.Logger { return zap.NewNop() }
