package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// publicPaths may be read without credentials, as upstream's
// system:public-info-viewer role allows: health checks and the version.
var publicPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true, "/version": true, "/version/": true}

func isPublicPath(p string) bool {
	if publicPaths[p] {
		return true
	}
	for _, prefix := range []string{"/healthz/", "/livez/", "/readyz/"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// newAuthenticator accepts client certificates signed by the cluster CA (the
// certificate's CN is the user, its O the groups). A request without valid
// credentials is anonymous only for the public paths; anywhere else it gets
// 401 Unauthorized, as kube-apiserver with --anonymous-auth=false.
func newAuthenticator(ca dynamiccertificates.CAContentProvider) authenticator.Request {
	certs := x509request.NewDynamic(ca.VerifyOptions, x509request.CommonNameUserConversion)
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := certs.AuthenticateRequest(req)
		if ok && err == nil {
			return resp, true, nil
		}
		if isPublicPath(req.URL.Path) {
			return &authenticator.Response{User: &user.DefaultInfo{
				Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}}, true, nil
		}
		return resp, ok, err
	})
}

// newAuthorizer allows system:masters everything, every authenticated user
// discovery and the OpenAPI documents, and anyone the public paths.
// Everything else is refused with upstream's 403.
func newAuthorizer() authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		u := a.GetUser()
		if u == nil {
			return authorizer.DecisionNoOpinion, "no user", nil
		}
		for _, g := range u.GetGroups() {
			if g == user.SystemPrivilegedGroup {
				return authorizer.DecisionAllow, "", nil
			}
		}
		if a.IsResourceRequest() {
			return authorizer.DecisionNoOpinion, "", nil
		}
		p := a.GetPath()
		if isPublicPath(p) {
			return authorizer.DecisionAllow, "", nil
		}
		if u.GetName() != user.Anonymous && a.IsReadOnly() && isDiscoveryPath(p) {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	})
}

// isDiscoveryPath is what upstream's system:discovery role covers.
func isDiscoveryPath(p string) bool {
	return p == "/api" || p == "/apis" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/") ||
		strings.HasPrefix(p, "/openapi/")
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
