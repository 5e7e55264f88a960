package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"

	"github.com/wharf-io/wharf/internal/pki"
	"github.com/wharf-io/wharf/test/e2e/framework"
)

// authzIdentity is a client certificate for a user the test makes up.
type authzIdentity struct {
	name       string
	cfg        *rest.Config
	client     kubernetes.Interface
	kubeconfig string
}

// authzCA reads the cluster CA (certificate and key) from etcd, where the
// server keeps it (/wharf/cluster-secrets), to sign test users' certificates.
func authzCA(t *testing.T, s *framework.Server) *pki.CA {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.EtcdURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/wharf/cluster-secrets")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read cluster secrets from etcd: %v (%d keys)", err, len(resp.Kvs))
	}
	var secrets struct {
		CACert []byte `json:"caCert"`
		CAKey  []byte `json:"caKey"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &secrets); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(secrets.CACert, secrets.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// authzUser signs a client certificate for name in groups and returns a
// client and a kubeconfig for it.
func authzUser(t *testing.T, s *framework.Server, ca *pki.CA, name string, groups ...string) *authzIdentity {
	t.Helper()
	certPEM, keyPEM, err := ca.Sign(pki.Request{CommonName: name, Organization: groups})
	if err != nil {
		t.Fatal(err)
	}
	admin := s.RestConfig()
	cfg := rest.AnonymousClientConfig(admin)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["wharf"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	kc.Contexts["wharf"] = &clientcmdapi.Context{Cluster: "wharf", AuthInfo: name}
	kc.CurrentContext = "wharf"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return &authzIdentity{name: name, cfg: cfg, client: client, kubeconfig: path}
}

// kubectl runs `wharf kubectl` as the identity.
func (id *authzIdentity) kubectl(t *testing.T, s *framework.Server, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"kubectl", "--kubeconfig", id.kubeconfig, "--cache-dir", filepath.Join(filepath.Dir(id.kubeconfig), "cache")}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Bin, full...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(id.kubeconfig))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// authzEventually retries f until it returns nil: RBAC objects and pods
// reach the authorizer through informers, a moment after they are written.
func authzEventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func wantForbidden(t *testing.T, what string, err error, message string) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: want 403 Forbidden, got %v", what, err)
		return
	}
	if message != "" && err.Error() != message {
		t.Errorf("%s: message\n got: %s\nwant: %s", what, err.Error(), message)
	}
}

// canIAnswer is `kubectl auth can-i`'s answer, "yes" or "no", without the
// warnings before it and the reason a denial carries after it.
func canIAnswer(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func authzPod(name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

func TestAuthz(t *testing.T) {
	s := framework.Start(t, framework.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := s.Client()

	t.Run("admin", func(t *testing.T) {
		if out := s.MustKubectl("auth", "can-i", "create", "pods"); strings.TrimSpace(out) != "yes" {
			t.Errorf("admin can-i create pods: %q", out)
		}
		if out := s.MustKubectl("auth", "can-i", "*", "*", "--all-namespaces"); strings.TrimSpace(out) != "yes" {
			t.Errorf("admin can-i '*' '*': %q", out)
		}
		out := s.MustKubectl("auth", "whoami")
		t.Logf("kubectl auth whoami:\n%s", out)
		if !strings.Contains(out, "wharf-admin") || !strings.Contains(out, "system:masters") {
			t.Errorf("auth whoami:\n%s", out)
		}
		// The bootstrap roles exist.
		for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user", "system:public-info-viewer"} {
			if _, err := admin.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("clusterrole %s: %v", name, err)
			}
		}
		crb, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, "cluster-admin", metav1.GetOptions{})
		if err != nil || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "system:masters" {
			t.Errorf("clusterrolebinding cluster-admin: %v %+v", err, crb)
		}
	})

	ca := authzCA(t, s)

	t.Run("rbac", func(t *testing.T) {
		alice := authzUser(t, s, ca, "alice")
		// No bindings: upstream's 403, exactly.
		_, err := alice.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		wantForbidden(t, "alice list pods", err,
			`pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`)
		out, err := alice.kubectl(t, s, "get", "pods")
		if err == nil || !strings.Contains(out, `Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`) {
			t.Errorf("kubectl get pods as alice: %v\n%s", err, out)
		}
		out, err = alice.kubectl(t, s, "auth", "can-i", "list", "pods")
		if err == nil || canIAnswer(out) != "no" {
			t.Errorf("alice can-i list pods: %v %q", err, out)
		}
		// But she may ask who she is.
		out, err = alice.kubectl(t, s, "auth", "whoami")
		if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "system:authenticated") {
			t.Errorf("alice whoami: %v\n%s", err, out)
		}

		_, err = admin.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "alice-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		authzEventually(t, "alice list pods in default after the binding", func() error {
			_, err := alice.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			return err
		})
		_, err = alice.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		wantForbidden(t, "alice list pods in kube-system", err,
			`pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "kube-system"`)
		_, err = alice.client.CoreV1().Pods("default").Create(ctx, authzPod("by-alice", ""), metav1.CreateOptions{})
		wantForbidden(t, "alice create pod", err,
			`pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "default"`)
		_, err = alice.client.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
		wantForbidden(t, "alice list secrets (not in view)", err, "")

		for args, want := range map[string]string{
			"list pods": "yes", "create pods": "no", "list pods -n kube-system": "no", "get deployments": "yes",
		} {
			out, _ := alice.kubectl(t, s, append([]string{"auth", "can-i"}, strings.Fields(args)...)...)
			if canIAnswer(out) != want {
				t.Errorf("alice can-i %s: %q, want %s", args, out, want)
			}
		}
		out, err = alice.kubectl(t, s, "auth", "can-i", "--list")
		t.Logf("alice: kubectl auth can-i --list:\n%s", out)
		if err != nil || !strings.Contains(out, "pods") || !strings.Contains(out, "selfsubjectaccessreviews.authorization.k8s.io") {
			t.Errorf("alice can-i --list: %v\n%s", err, out)
		}
		// The admin may ask on her behalf (impersonation).
		if out := s.MustKubectl("auth", "can-i", "list", "pods", "--as", "alice"); strings.TrimSpace(out) != "yes" {
			t.Errorf("can-i --as alice: %q", out)
		}
	})

	t.Run("node", func(t *testing.T) {
		n1 := authzUser(t, s, ca, "system:node:n1", "system:nodes")
		node := n1.client

		// It registers its own Node; the admin makes another one.
		if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("n1 create its Node: %v", err)
		}
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The node IPAM controller writes the Node too: retry on conflict,
		// as every client of a shared object does.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			own, err := node.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			own.Labels = map[string]string{"wharf.io/test": "yes"}
			_, err = node.CoreV1().Nodes().Update(ctx, own, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Errorf("n1 update its Node: %v", err)
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			own, err := node.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			own.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
			_, err = node.CoreV1().Nodes().UpdateStatus(ctx, own, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Errorf("n1 update its node status: %v", err)
		}
		other, err := node.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("n1 read n2: %v", err)
		}
		other.Labels = map[string]string{"hijacked": "yes"}
		_, err = node.CoreV1().Nodes().Update(ctx, other, metav1.UpdateOptions{})
		wantForbidden(t, "n1 update n2", err,
			`nodes "n2" is forbidden: User "system:node:n1" cannot update resource "nodes" in API group "" at the cluster scope: node "n1" is not allowed to modify node "n2"`)
		_, err = node.CoreV1().Nodes().UpdateStatus(ctx, other, metav1.UpdateOptions{})
		wantForbidden(t, "n1 update n2's status", err, "")
		err = node.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{})
		wantForbidden(t, "n1 delete n2", err, "")

		// Its lease, not another's.
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease}}
		if lease, err = node.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatalf("n1 create its lease: %v", err)
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.RenewTime = &now
		if _, err := node.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			t.Errorf("n1 renew its lease: %v", err)
		}
		otherLease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n2", Namespace: corev1.NamespaceNodeLease}}
		_, err = node.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, otherLease, metav1.UpdateOptions{})
		wantForbidden(t, "n1 update n2's lease", err, "")

		// Pods: the status of its own, not of another node's.
		for _, p := range []*corev1.Pod{authzPod("on-n1", "n1"), authzPod("on-n2", "n2")} {
			if _, err := admin.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		authzEventually(t, "n1 update the status of its pod", func() error {
			p, err := node.CoreV1().Pods("default").Get(ctx, "on-n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.Phase = corev1.PodRunning
			_, err = node.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})
		if p, _ := admin.CoreV1().Pods("default").Get(ctx, "on-n1", metav1.GetOptions{}); p == nil || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod status not written: %+v", p)
		}
		theirs, err := node.CoreV1().Pods("default").Get(ctx, "on-n2", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("n1 read a pod: %v", err)
		}
		theirs.Status.Phase = corev1.PodFailed
		_, err = node.CoreV1().Pods("default").UpdateStatus(ctx, theirs, metav1.UpdateOptions{})
		wantForbidden(t, "n1 update the status of n2's pod", err, "")
		err = node.CoreV1().Pods("default").Delete(ctx, "on-n2", metav1.DeleteOptions{})
		wantForbidden(t, "n1 delete n2's pod", err, "")
		_, err = node.CoreV1().Pods("default").Create(ctx, authzPod("mirror", "n1"), metav1.CreateOptions{})
		wantForbidden(t, "n1 create a pod", err, "")
		_, err = node.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
		wantForbidden(t, "n1 create a configmap", err, "")

		// Events it may write.
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "n1.started", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "n1"}, Reason: "Starting", Type: corev1.EventTypeNormal}
		if _, err := node.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Errorf("n1 create an event: %v", err)
		}

		// The admin asking on the node's behalf (impersonation) sees the same.
		for args, want := range map[string]string{
			"update nodes/n1": "yes", "update nodes/n2": "no", "patch pods/on-n1 --subresource=status": "yes",
			"patch pods/on-n2 --subresource=status": "no", "list secrets -A": "yes", "create pods --subresource=binding": "no",
		} {
			full := append([]string{"auth", "can-i"}, strings.Fields(args)...)
			full = append(full, "--as", "system:node:n1", "--as-group", "system:nodes")
			out, _ := s.Kubectl(full...)
			if canIAnswer(out) != want {
				t.Errorf("can-i %s as n1: %q, want %s", args, out, want)
			}
		}
	})
}
