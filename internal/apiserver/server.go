// Package apiserver is Wharf's Kubernetes API server: the k8s.io/api types
// served by k8s.io/apiserver's generic server on etcd (see DESIGN.md for why
// the generic server rather than our own REST layer), with Wharf's own
// registry table, printers, bootstrap objects and identities.
package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle"
	"k8s.io/apiserver/pkg/admission/plugin/resourcequota"
	resourcequotaapi "k8s.io/apiserver/pkg/admission/plugin/resourcequota/apis/resourcequota"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	quotageneric "k8s.io/apiserver/pkg/quota/v1/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	basecompatibility "k8s.io/component-base/compatibility"

	wharfadmission "github.com/wharf-io/wharf/internal/admission"
	"github.com/wharf-io/wharf/internal/apiserver/authz"
	"github.com/wharf-io/wharf/internal/apiserver/registry"
	"github.com/wharf-io/wharf/internal/apiserver/review"
	"github.com/wharf-io/wharf/internal/apiserver/satoken"
	"github.com/wharf-io/wharf/internal/apiserver/scheme"
	"github.com/wharf-io/wharf/internal/controller/all"
	"github.com/wharf-io/wharf/internal/controller/manager"
	generatedopenapi "github.com/wharf-io/wharf/internal/generated/openapi"
	"github.com/wharf-io/wharf/internal/hostnet"
	"github.com/wharf-io/wharf/internal/join"
	"github.com/wharf-io/wharf/internal/pki"
	"github.com/wharf-io/wharf/internal/quota"
)

// KubernetesVersion is the Kubernetes release whose API Wharf serves; /version
// reports it so kubectl's version-skew check is satisfied.
const KubernetesVersion = "v1.37.2"

// Config is the API server's configuration.
type Config struct {
	// DataDir holds tls/, admin.kubeconfig and (embedded) etcd.
	DataDir string
	// BindAddress and SecurePort are where HTTPS is served (0.0.0.0:6443).
	BindAddress string
	SecurePort  int
	// AdvertiseAddress is the address other nodes and the kubeconfig use.
	AdvertiseAddress string
	// EtcdServers are the etcd client URLs.
	EtcdServers []string
	// ServiceCIDR is the service IP range; its first address is the
	// kubernetes service's.
	ServiceCIDR string
	// ClusterDomain is the DNS domain (cluster.local).
	ClusterDomain string
	// ClusterDNS is the kube-dns service's address (default: the tenth
	// address of ServiceCIDR).
	ClusterDNS string
	// ServiceNodePortRange is the node port range (30000-32767).
	ServiceNodePortRange string
	// ClusterCIDR is the pod range (10.244.0.0/16); each node gets a
	// NodeCIDRMaskSize (24) piece of it.
	ClusterCIDR      string
	NodeCIDRMaskSize int
	// LBPool are LoadBalancer address ranges; empty: node addresses.
	LBPool []string
	// IngressPorts are held by the ingress controller on node addresses
	// ("TCP/80", "TCP/443"); nil when the ingress is disabled.
	IngressPorts []string
	// NodeMonitorGracePeriod is how long a silent node stays Ready (40 s).
	NodeMonitorGracePeriod time.Duration
	// AllowedExternalIPCIDRs are where service externalIPs may point (none
	// by default).
	AllowedExternalIPCIDRs []string
	// DisableControllers runs the API alone (k3s's
	// --disable-controller-manager and --disable-scheduler together).
	DisableControllers bool

	rootCA []byte
	// TLSSANs are extra names and addresses for the serving certificate.
	TLSSANs []string
	// CompactionInterval overrides etcd compaction's 5 minute interval
	// (tests use a short one); 0 keeps the default.
	CompactionInterval time.Duration
}

// Defaults fills in unset fields.
func (c *Config) Defaults() {
	if c.BindAddress == "" {
		c.BindAddress = "0.0.0.0"
	}
	if c.SecurePort == 0 {
		c.SecurePort = 6443
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = "10.96.0.0/12"
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = "10.244.0.0/16"
	}
	if c.NodeCIDRMaskSize == 0 {
		c.NodeCIDRMaskSize = 24
	}
	if c.ServiceNodePortRange == "" {
		c.ServiceNodePortRange = "30000-32767"
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = storagebackend.DefaultCompactInterval
	}
}

func (c *Config) firstServiceIP() net.IP {
	_, n, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return nil
	}
	ip := append(net.IP{}, n.IP.To16()...)
	ip[len(ip)-1]++
	return ip
}

// Server is a configured API server, ready to run.
type Server struct {
	cfg     Config
	generic *genericapiserver.GenericAPIServer
	// Kubeconfig is the path of the admin kubeconfig written at start.
	Kubeconfig string
	// Secrets are the cluster secrets shared through etcd.
	Secrets *ClusterSecrets
}

// New prepares the server: loads or makes the cluster secrets in etcd,
// writes certificates and the admin kubeconfig, and installs every API group.
func New(ctx context.Context, c Config) (*Server, error) {
	c.Defaults()
	secrets, err := loadSecrets(ctx, c.EtcdServers)
	if err != nil {
		return nil, err
	}
	ca, err := secrets.CA()
	if err != nil {
		return nil, err
	}
	c.rootCA = ca.CertPEM
	certFile, keyFile, err := writeServingCert(&c, ca)
	if err != nil {
		return nil, fmt.Errorf("write serving certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.DataDir, "token"), []byte(join.Token(ca.CertPEM, secrets.JoinToken)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write join token: %w", err)
	}
	kubeconfig, err := writeAdminKubeconfig(&c, ca)
	if err != nil {
		return nil, fmt.Errorf("write admin kubeconfig: %w", err)
	}
	signer, err := satoken.NewSigner(secrets.ServiceAccount)
	if err != nil {
		return nil, err
	}
	gc, factory, err := genericConfig(ctx, &c, ca, secrets.JoinToken, signer, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	gs, err := gc.Complete(factory).New("wharf-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("build API server: %w", err)
	}
	services, err := newServiceAllocation(&c)
	if err != nil {
		return nil, err
	}
	addAllocationRepair(gs, services)
	storage, err := registry.Build(withServiceAllocation(registry.Resources(), services), gc.RESTOptionsGetter)
	if err != nil {
		return nil, err
	}
	if err := addPodStreams(storage, &c, ca); err != nil {
		return nil, err
	}
	storage[authorizationv1.SchemeGroupVersion] = review.AuthorizationStorage(gc.Authorization.Authorizer)
	storage[authenticationv1.SchemeGroupVersion] = review.AuthenticationStorage()
	core := storage[corev1.SchemeGroupVersion]
	core["serviceaccounts/token"] = &satoken.TokenREST{Signer: signer,
		ServiceAccounts: core["serviceaccounts"].(rest.Getter), Pods: core["pods"].(rest.Getter)}
	if err := installAPIs(gs, storage); err != nil {
		return nil, err
	}
	if !c.DisableControllers {
		addControllers(gs, &c)
	}
	gs.AddPostStartHookOrDie("wharf-informers", func(hc genericapiserver.PostStartHookContext) error {
		factory.Start(hc.Done())
		return nil
	})
	gs.AddPostStartHookOrDie("wharf-bootstrap-objects", func(hc genericapiserver.PostStartHookContext) error {
		return bootstrapObjects(hc, hc.LoopbackClientConfig, &c)
	})
	if err := addPeerHooks(gs, &c); err != nil {
		return nil, err
	}
	return &Server{cfg: c, generic: gs, Kubeconfig: kubeconfig, Secrets: secrets}, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	return s.generic.PrepareRun().RunWithContext(ctx)
}

func loadSecrets(ctx context.Context, endpoints []string) (*ClusterSecrets, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return LoadOrCreateSecrets(ctx, cli)
}

// genericConfig builds the generic server's configuration: serving, client
// certificate and token authentication, authorization, admission, OpenAPI and
// the etcd-backed storage options.
func genericConfig(ctx context.Context, c *Config, ca *pki.CA, joinSecret string, signer *satoken.Signer, certFile, keyFile string) (*genericapiserver.Config, informers.SharedInformerFactory, error) {
	gc := genericapiserver.NewConfig(scheme.Codecs)
	// As kube-apiserver: watches, proxies and the pod streams (logs -f,
	// exec, attach, port-forward) are not cut at the request timeout.
	gc.LongRunningFunc = genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"))
	gc.EffectiveVersion = basecompatibility.NewEffectiveVersionFromString(KubernetesVersion[1:], "", "")
	serving := options.NewSecureServingOptions()
	serving.BindAddress = net.ParseIP(c.BindAddress)
	serving.BindPort = c.SecurePort
	serving.ServerCert.CertKey.CertFile = certFile
	serving.ServerCert.CertKey.KeyFile = keyFile
	if err := serving.WithLoopback().ApplyTo(&gc.SecureServing, &gc.LoopbackClientConfig); err != nil {
		return nil, nil, fmt.Errorf("serve HTTPS on %s:%d: %w", c.BindAddress, c.SecurePort, err)
	}
	if ip := net.ParseIP(c.AdvertiseAddress); ip != nil {
		gc.PublicAddress = ip
	} else {
		gc.PublicAddress = net.ParseIP("127.0.0.1")
	}
	clientCA, err := dynamiccertificates.NewStaticCAContent("wharf-ca", ca.CertPEM)
	if err != nil {
		return nil, nil, err
	}
	if err := gc.Authentication.ApplyClientCert(clientCA, gc.SecureServing); err != nil {
		return nil, nil, err
	}
	tokens := &satoken.Authenticator{Signer: signer, Client: loopbackClient(gc)}
	gc.Authentication.Authenticator = newAuthenticator(clientCA, tokens)
	gc.BuildHandlerChainFunc = func(h http.Handler, cfg *genericapiserver.Config) http.Handler {
		return withJoin(withVersion(genericapiserver.DefaultBuildHandlerChain(h, cfg)), ca, joinSecret)
	}

	namer := openapinamer.NewDefinitionNamer(scheme.External)
	gc.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	gc.OpenAPIConfig.Info.Title = "Kubernetes"
	gc.OpenAPIConfig.Info.Version = KubernetesVersion
	gc.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	gc.OpenAPIV3Config.Info.Title = "Kubernetes"
	gc.OpenAPIV3Config.Info.Version = KubernetesVersion

	defs := registry.Resources()
	etcdOpts := registry.NewEtcdOptions(storagebackend.TransportConfig{ServerList: c.EtcdServers}, defs)
	etcdOpts.CompactionInterval = c.CompactionInterval
	gc.RESTOptionsGetter = etcdOpts

	client, err := kubernetes.NewForConfig(gc.LoopbackClientConfig)
	if err != nil {
		return nil, nil, err
	}
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	gc.Authorization.Authorizer = newAuthorizer(factory)
	admit, err := newAdmission(ctx, c, client, factory)
	if err != nil {
		return nil, nil, err
	}
	gc.AdmissionControl = admit
	return gc, factory, nil
}

// newAdmission builds the admission chain in upstream's order:
// NamespaceLifecycle (objects only in namespaces that exist and are not
// terminating; default, kube-system and kube-public cannot be deleted),
// LimitRanger, ServiceAccount, NodeRestriction, DefaultIngressClass, the
// externalIPs guard, and ResourceQuota last.
func newAdmission(ctx context.Context, c *Config, client kubernetes.Interface, factory informers.SharedInformerFactory) (admission.Interface, error) {
	nl, err := lifecycle.NewLifecycle(sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic))
	if err != nil {
		return nil, err
	}
	nl.SetExternalKubeClientSet(client)
	nl.SetExternalKubeInformerFactory(factory)
	if err := nl.ValidateInitialization(); err != nil {
		return nil, err
	}
	rq, err := resourcequota.NewResourceQuota(&resourcequotaapi.Configuration{}, 5)
	if err != nil {
		return nil, err
	}
	rq.SetDrainedNotification(ctx.Done())
	rq.SetExternalKubeClientSet(client)
	rq.SetExternalKubeInformerFactory(factory)
	rq.SetQuotaConfiguration(quotageneric.NewConfiguration(
		quota.Evaluators(quotageneric.ListerFuncForResourceFunc(factory.ForResource)), nil))
	if err := rq.ValidateInitialization(); err != nil {
		return nil, err
	}
	eips, err := wharfadmission.NewExternalIPs(c.AllowedExternalIPCIDRs)
	if err != nil {
		return nil, err
	}
	return admission.NewChainHandler(
		nl,
		wharfadmission.NewLimitRanger(factory.Core().V1().LimitRanges().Lister()),
		wharfadmission.NewServiceAccount(),
		authz.NewNodeRestriction(),
		wharfadmission.NewDefaultIngressClass(factory.Networking().V1().IngressClasses().Lister()),
		eips,
		rq,
	), nil
}

// installAPIs installs the core group at /api and every other group at /apis,
// in the order of scheme.ServedGroupVersions (networking.k8s.io before
// extensions, as upstream lists them).
func installAPIs(gs *genericapiserver.GenericAPIServer, storage registry.Storage) error {
	var groups []*genericapiserver.APIGroupInfo
	for _, gv := range scheme.ServedGroupVersions {
		resources, ok := storage[gv]
		if !ok {
			continue
		}
		info := genericapiserver.NewDefaultAPIGroupInfo(gv.Group, scheme.Scheme, scheme.ParameterCodec, scheme.Codecs)
		info.PrioritizedVersions = []schema.GroupVersion{gv}
		info.VersionedResourcesStorageMap[gv.Version] = resources
		if gv.Group == "" {
			if err := gs.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &info); err != nil {
				return fmt.Errorf("install core API: %w", err)
			}
			continue
		}
		groups = append(groups, &info)
	}
	if err := gs.InstallAPIGroups(groups...); err != nil {
		return fmt.Errorf("install API groups: %w", err)
	}
	if gs.AggregatedDiscoveryGroupManager != nil {
		for _, gv := range scheme.ServedGroupVersions {
			if p, ok := groupPriority[gv.Group]; ok {
				gs.AggregatedDiscoveryGroupManager.SetGroupVersionPriority(
					metav1.GroupVersion{Group: gv.Group, Version: gv.Version}, p, 15)
			}
		}
	}
	return nil
}

// groupPriority orders groups in aggregated discovery as kube-apiserver does,
// except that networking.k8s.io comes before extensions, so that `kubectl get
// ingress` means networking.k8s.io/v1 Ingresses.
var groupPriority = map[string]int{
	"": 18000, "apps": 17800, "events.k8s.io": 17750, "authentication.k8s.io": 17700,
	"authorization.k8s.io": 17600, "autoscaling": 17500, "networking.k8s.io": 17200,
	"extensions": 17150, "policy": 17100, "rbac.authorization.k8s.io": 17000,
	"coordination.k8s.io": 16500, "discovery.k8s.io": 16200,
}

// addPeerHooks keeps this server in the kubernetes service's endpoints while
// it runs and takes it out before it shuts down.
func addPeerHooks(gs *genericapiserver.GenericAPIServer, c *Config) error {
	addr := c.AdvertiseAddress
	if addr == "" {
		ip := hostnet.DefaultIPv4()
		if ip == nil {
			// Endpoints may not hold loopback addresses (upstream's
			// validation), so with no other address there is nothing to list.
			fmt.Println("wharf: no non-loopback address to list in the kubernetes service's endpoints; set --advertise-address")
			return nil
		}
		addr = ip.String()
	}
	var p *peers
	gs.AddPostStartHookOrDie("wharf-apiserver-endpoints", func(hc genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(hc.LoopbackClientConfig)
		if err != nil {
			return err
		}
		p = &peers{client: client, address: addr, port: c.SecurePort, now: time.Now}
		go p.run(hc)
		return nil
	})
	return gs.AddPreShutdownHook("wharf-apiserver-endpoints", func() error {
		if p == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.stop(ctx)
	})
}

// addControllers runs the controllers (under leader election) once the
// server serves.
func addControllers(gs *genericapiserver.GenericAPIServer, c *Config) {
	opts := manager.Options{ClusterCIDR: c.ClusterCIDR, NodeCIDRMaskSize: c.NodeCIDRMaskSize, LBPool: c.LBPool,
		IngressPorts: c.IngressPorts, NodeMonitorGracePeriod: c.NodeMonitorGracePeriod, RootCAPEM: c.rootCA}
	gs.AddPostStartHookOrDie("wharf-controllers", func(hc genericapiserver.PostStartHookContext) error {
		go func() {
			if err := manager.Run(hc, hc.LoopbackClientConfig, opts, all.Groups()); err != nil {
				fmt.Printf("wharf: controllers: %v\n", err)
			}
		}()
		return nil
	})
}

// addPodStreams serves pods/log, exec, attach and portforward through the
// node agents, with the kubelet-client certificate.
func addPodStreams(storage registry.Storage, c *Config, ca *pki.CA) error {
	certPEM, keyPEM, err := writeKubeletClientCert(c, ca)
	if err != nil {
		return fmt.Errorf("write kubelet client certificate: %w", err)
	}
	transport, err := newKubeletTransport(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		return err
	}
	return registry.AddPodStreams(storage, transport)
}

// loopbackClient returns a lazily made client on the server's loopback
// configuration (it exists only once serving is configured).
func loopbackClient(gc *genericapiserver.Config) func() kubernetes.Interface {
	var once sync.Once
	var client kubernetes.Interface
	return func() kubernetes.Interface {
		once.Do(func() { client = kubernetes.NewForConfigOrDie(gc.LoopbackClientConfig) })
		return client
	}
}
