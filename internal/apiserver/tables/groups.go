package tables

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ReplicaSets prints NAME DESIRED CURRENT READY AGE [CONTAINERS IMAGES
// SELECTOR].
var ReplicaSets = &Printer{
	Columns: ReplicationControllers.Columns,
	Cells: func(o runtime.Object) []interface{} {
		rs := o.(*appsv1.ReplicaSet)
		names, images := containerColumns(rs.Spec.Template.Spec.Containers)
		return []interface{}{rs.Name, int64(deref(rs.Spec.Replicas)), int64(rs.Status.Replicas),
			int64(rs.Status.ReadyReplicas), Age(rs.CreationTimestamp), names, images, labelSelector(rs.Spec.Selector)}
	},
}

// Deployments prints NAME READY UP-TO-DATE AVAILABLE AGE [CONTAINERS IMAGES
// SELECTOR].
var Deployments = &Printer{
	Columns: []Column{name, col("Ready"), intCol("Up-to-date"), intCol("Available"), age,
		wide(col("Containers")), wide(col("Images")), wide(col("Selector"))},
	Cells: func(o runtime.Object) []interface{} {
		d := o.(*appsv1.Deployment)
		names, images := containerColumns(d.Spec.Template.Spec.Containers)
		return []interface{}{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref(d.Spec.Replicas)),
			int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), Age(d.CreationTimestamp),
			names, images, labelSelector(d.Spec.Selector)}
	},
}

func labelSelector(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		return "<none>"
	}
	return sel.String()
}

// Ingresses prints NAME CLASS HOSTS ADDRESS PORTS AGE.
var Ingresses = &Printer{
	Columns: []Column{name, col("Class"), col("Hosts"), col("Address"), col("Ports"), age},
	Cells: func(o runtime.Object) []interface{} {
		ing := o.(*networkingv1.Ingress)
		class := "<none>"
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		}
		var hosts []string
		for _, r := range ing.Spec.Rules {
			h := r.Host
			if h == "" {
				h = "*"
			}
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		var addrs []string
		for _, lb := range ing.Status.LoadBalancer.Ingress {
			if lb.IP != "" {
				addrs = append(addrs, lb.IP)
			} else if lb.Hostname != "" {
				addrs = append(addrs, lb.Hostname)
			}
		}
		ports := "80"
		if len(ing.Spec.TLS) > 0 {
			ports = "80, 443"
		}
		return []interface{}{ing.Name, class, moreList(hosts, 4, ","), strings.Join(addrs, ","), ports, Age(ing.CreationTimestamp)}
	},
}

// IngressClasses prints NAME CONTROLLER PARAMETERS AGE.
var IngressClasses = &Printer{
	Columns: []Column{name, col("Controller"), col("Parameters"), age},
	Cells: func(o runtime.Object) []interface{} {
		c := o.(*networkingv1.IngressClass)
		params := "<none>"
		if p := c.Spec.Parameters; p != nil {
			group := ""
			if p.APIGroup != nil {
				group = "." + *p.APIGroup
			}
			params = fmt.Sprintf("%s%s/%s", p.Kind, group, p.Name)
		}
		return []interface{}{c.Name, c.Spec.Controller, params, Age(c.CreationTimestamp)}
	},
}

// EndpointSlices prints NAME ADDRESSTYPE PORTS ENDPOINTS AGE.
var EndpointSlices = &Printer{
	Columns: []Column{name, col("AddressType"), col("Ports"), col("Endpoints"), age},
	Cells: func(o runtime.Object) []interface{} {
		s := o.(*discoveryv1.EndpointSlice)
		var ports []string
		for _, p := range s.Ports {
			if p.Port != nil {
				ports = append(ports, strconv.Itoa(int(*p.Port)))
			}
		}
		portCol := "<unset>"
		if len(ports) > 0 {
			portCol = moreList(ports, 3, ",")
		}
		var addrs []string
		for _, e := range s.Endpoints {
			addrs = append(addrs, e.Addresses...)
		}
		epCol := "<unset>"
		if len(addrs) > 0 {
			epCol = moreList(addrs, 3, ",")
		}
		return []interface{}{s.Name, string(s.AddressType), portCol, epCol, Age(s.CreationTimestamp)}
	},
}

// Leases prints NAME HOLDER AGE.
var Leases = &Printer{
	Columns: []Column{name, col("Holder"), age},
	Cells: func(o runtime.Object) []interface{} {
		l := o.(*coordinationv1.Lease)
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return []interface{}{l.Name, holder, Age(l.CreationTimestamp)}
	},
}

func bindingCells(name string, created metav1.Time, ref rbacv1.RoleRef, subjects []rbacv1.Subject) []interface{} {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return []interface{}{name, ref.Kind + "/" + ref.Name, Age(created),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
}

var bindingColumns = []Column{name, col("Role"), age, wide(col("Users")), wide(col("Groups")), wide(col("ServiceAccounts"))}

// RoleBindings prints NAME ROLE AGE [USERS GROUPS SERVICEACCOUNTS].
var RoleBindings = &Printer{
	Columns: bindingColumns,
	Cells: func(o runtime.Object) []interface{} {
		b := o.(*rbacv1.RoleBinding)
		return bindingCells(b.Name, b.CreationTimestamp, b.RoleRef, b.Subjects)
	},
}

// ClusterRoleBindings prints NAME ROLE AGE [USERS GROUPS SERVICEACCOUNTS].
var ClusterRoleBindings = &Printer{
	Columns: bindingColumns,
	Cells: func(o runtime.Object) []interface{} {
		b := o.(*rbacv1.ClusterRoleBinding)
		return bindingCells(b.Name, b.CreationTimestamp, b.RoleRef, b.Subjects)
	},
}
