package apiserver

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"

	"github.com/wharf-io/wharf/internal/apiserver/alloc"
	"github.com/wharf-io/wharf/internal/apiserver/registry"
)

// repairInterval is how often allocations are checked against services.
const repairInterval = time.Minute

// newServiceAllocation makes the cluster IP and node port allocators on etcd.
func newServiceAllocation(c *Config) (*alloc.Services, error) {
	ipRange, err := alloc.NewIPRange(c.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	portRange, err := alloc.ParsePortRange(c.ServiceNodePortRange)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.EtcdServers, DialTimeout: 10 * time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", c.EtcdServers, err)
	}
	kv := alloc.EtcdKV{Client: cli}
	return alloc.NewServices(alloc.NewIPAllocator(kv, ipRange), alloc.NewPortAllocator(kv, portRange)), nil
}

// withServiceAllocation attaches the allocation hooks to the services
// resource.
func withServiceAllocation(defs []*registry.Resource, s *alloc.Services) []*registry.Resource {
	for _, d := range defs {
		if d.GroupVersion.Group == "" && d.Name == "services" {
			d.Hooks = registry.Hooks{BeginCreate: s.BeginCreate, BeginUpdate: s.BeginUpdate,
				AfterUpdate: s.AfterUpdate, AfterDelete: s.AfterDelete}
		}
	}
	return defs
}

// addAllocationRepair runs the allocation repair at start and every
// repairInterval.
func addAllocationRepair(gs *genericapiserver.GenericAPIServer, s *alloc.Services) {
	gs.AddPostStartHookOrDie("wharf-service-allocation-repair", func(hc genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(hc.LoopbackClientConfig)
		if err != nil {
			return err
		}
		r := &alloc.Repair{Services: s}
		go func() {
			t := time.NewTicker(repairInterval)
			defer t.Stop()
			for {
				if err := repairOnce(hc, client, r); err != nil && hc.Err() == nil {
					fmt.Printf("wharf: service allocation repair: %v\n", err)
				}
				select {
				case <-hc.Done():
					return
				case <-t.C:
				}
			}
		}()
		return nil
	})
}

func repairOnce(ctx context.Context, client kubernetes.Interface, r *alloc.Repair) error {
	list, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	released, reclaimed, err := r.Run(ctx, list.Items)
	if len(released)+len(reclaimed) > 0 {
		fmt.Printf("wharf: service allocation repair released %v, re-claimed %v\n", released, reclaimed)
	}
	return err
}
