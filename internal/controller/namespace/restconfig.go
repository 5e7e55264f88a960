package namespace

import (
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// newMetadataClient returns a metadata client for the server client talks
// to, with client's credentials: the manager hands controllers a clientset,
// whose HTTP client already carries the TLS and authentication settings.
func newMetadataClient(client kubernetes.Interface, agent string) (metadata.Interface, error) {
	rc, ok := client.Discovery().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil {
		return nil, fmt.Errorf("%s: the clientset has no REST client to share", agent)
	}
	u := rc.Get().URL()
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery = ""
	hc := rc.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	cfg := &rest.Config{
		Host:      u.String(),
		QPS:       100,
		Burst:     200,
		UserAgent: rest.DefaultKubernetesUserAgent() + "/" + agent,
	}
	return metadata.NewForConfigAndClient(cfg, hc)
}
