package authz

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apiserver/pkg/admission"
)

// NodeRestriction is the part of upstream's NodeRestriction admission plugin
// that authorization cannot do: a create request names its object in the
// body, so only admission sees which Node or node Lease an agent creates.
// It refuses a node creating a Node or a kube-node-lease Lease whose name is
// not its own. (The node authorizer already refuses writes that name
// another node's objects in the URL.)
type NodeRestriction struct {
	*admission.Handler
}

var _ admission.ValidationInterface = (*NodeRestriction)(nil)

// NewNodeRestriction returns the admission check; add it to the chain.
func NewNodeRestriction() *NodeRestriction {
	return &NodeRestriction{Handler: admission.NewHandler(admission.Create)}
}

// Validate refuses a node's create of another node's Node or Lease.
func (p *NodeRestriction) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	node, ok := NodeName(a.GetUserInfo())
	if !ok || a.GetOperation() != admission.Create || a.GetSubresource() != "" {
		return nil
	}
	gr := a.GetResource().GroupResource()
	var what string
	switch {
	case gr.Group == legacyGroup && gr.Resource == "nodes":
		what = "node"
	case gr.Group == coordinationGroup && gr.Resource == "leases" && a.GetNamespace() == corev1.NamespaceNodeLease:
		what = "the lease of node"
	default:
		return nil
	}
	name := a.GetName()
	if obj := a.GetObject(); obj != nil {
		if m, err := meta.Accessor(obj); err == nil && m.GetName() != "" {
			name = m.GetName()
		}
	}
	if name == node {
		return nil
	}
	return admission.NewForbidden(a, fmt.Errorf("node %q is not allowed to modify %s %q", node, what, name))
}
