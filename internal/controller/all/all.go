// Package all lists Wharf's controllers by leader-election group.
package all

import (
	"github.com/wharf-io/wharf/internal/controller/deployment"
	"github.com/wharf-io/wharf/internal/controller/endpoints"
	"github.com/wharf-io/wharf/internal/controller/endpointslice"
	"github.com/wharf-io/wharf/internal/controller/gc"
	"github.com/wharf-io/wharf/internal/controller/manager"
	"github.com/wharf-io/wharf/internal/controller/namespace"
	"github.com/wharf-io/wharf/internal/controller/node"
	"github.com/wharf-io/wharf/internal/controller/quota"
	"github.com/wharf-io/wharf/internal/controller/replication"
	"github.com/wharf-io/wharf/internal/controller/scheduler"
	"github.com/wharf-io/wharf/internal/controller/serviceaccount"
	"github.com/wharf-io/wharf/internal/controller/servicelb"
)

// Groups returns the controller groups: the controller manager's loops share
// one Lease, the scheduler has its own (as kube-controller-manager and
// kube-scheduler do).
func Groups() []manager.Group {
	return []manager.Group{
		{Name: "wharf-controller-manager", Controllers: map[string]manager.Constructor{
			"resourcequota":          quota.NewFromContext,
			"replicationcontroller":  replication.NewReplicationControllers,
			"replicaset":             replication.NewReplicaSets,
			"deployment":             deployment.New,
			"endpoints":              endpoints.New,
			"endpointslice":          endpointslice.New,
			"endpointslicemirroring": endpointslice.NewMirroring,
			"namespace":              namespace.New,
			"garbagecollector":       gc.New,
			"nodeipam":               node.NewIPAM,
			"nodelifecycle":          node.NewLifecycle,
			"servicelb":              servicelb.New,
			"serviceaccount":         serviceaccount.New,
		}},
		{Name: "wharf-scheduler", Controllers: map[string]manager.Constructor{
			"scheduler": scheduler.New,
		}},
	}
}
