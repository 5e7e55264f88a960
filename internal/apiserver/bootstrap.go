package apiserver

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wharf-io/wharf/internal/apiserver/authz"
)

// IngressClassName is the IngressClass Wharf's controller claims; it is
// created marked default, so Ingresses without a class are Wharf's.
const IngressClassName = "wharf"

// IngressControllerName is the IngressClass spec.controller value.
const IngressControllerName = "wharf.io/ingress-controller"

// bootstrapObjects creates the objects every cluster has from its first
// start: the system namespaces, the kubernetes and kube-dns services, the
// default IngressClass, and upstream's default cluster roles and bindings
// (authz.ClusterRoles, authz.ClusterRoleBindings). Objects that exist are
// left as they are.
func bootstrapObjects(ctx context.Context, cfg *rest.Config, c *Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := ensureBootstrapObjects(ctx, client, c); err != nil {
			fmt.Printf("wharf: bootstrap objects: %v (retrying)\n", err)
			return false, nil
		}
		return true, nil
	})
}

func ensureBootstrapObjects(ctx context.Context, client kubernetes.Interface, c *Config) error {
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if ignoreExists(err) != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	svcs := []*corev1.Service{kubernetesService(c), kubeDNSService(c)}
	for _, svc := range svcs {
		// Look first: a create of an existing service would fail on its
		// cluster IP (allocated before the name is checked, as upstream).
		_, err := client.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		}
		if ignoreExists(err) != nil {
			return fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	class := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: IngressClassName,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: IngressControllerName},
	}
	_, err := client.NetworkingV1().IngressClasses().Create(ctx, class, metav1.CreateOptions{})
	if ignoreExists(err) != nil {
		return fmt.Errorf("ingressclass %s: %w", IngressClassName, err)
	}
	for _, role := range authz.ClusterRoles() {
		_, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if ignoreExists(err) != nil {
			return fmt.Errorf("clusterrole %s: %w", role.Name, err)
		}
	}
	for _, binding := range authz.ClusterRoleBindings() {
		_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
		if ignoreExists(err) != nil {
			return fmt.Errorf("clusterrolebinding %s: %w", binding.Name, err)
		}
	}
	return nil
}

func kubernetesService(c *Config) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(c.SecurePort))}},
		},
	}
	if ip := c.firstServiceIP(); ip != nil {
		svc.Spec.ClusterIP = ip.String()
	}
	return svc
}

// ClusterDNSIP returns the tenth address of the service range, kubeadm's
// choice for the cluster DNS service (10.96.0.10 in the default range).
func ClusterDNSIP(serviceCIDR string) net.IP {
	_, n, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return nil
	}
	ip := append(net.IP{}, n.IP.To16()...)
	ip[len(ip)-1] += 10
	return ip
}

func kubeDNSService(c *Config) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	ip := c.ClusterDNS
	if ip == "" {
		if dns := ClusterDNSIP(c.ServiceCIDR); dns != nil {
			ip = dns.String()
		}
	}
	svc.Spec.ClusterIP = ip
	return svc
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
