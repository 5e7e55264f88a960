// Package alloc hands out service cluster IPs and node ports. Each allocated
// address or port is one etcd key whose value names the owning service
// (upstream's IPAddress model): allocation is a create on the key's absence,
// so any number of API servers sharing one etcd never hand out the same one.
// The service registry allocates before it stores a Service and releases
// when the store fails; a repair loop releases what a crash between the two
// leaves behind (kube-apiserver's allocate-then-create with repair).
package alloc

import (
	"context"
	"sort"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is the little of etcd the allocators need.
type KV interface {
	// Create stores key=value if key is absent; it reports whether it did,
	// and otherwise returns the present value.
	Create(ctx context.Context, key, value string) (created bool, existing string, err error)
	// Delete removes key if its value is still value.
	Delete(ctx context.Context, key, value string) error
	// Get returns key's value, or "" and false.
	Get(ctx context.Context, key string) (string, bool, error)
	// List returns every key under prefix with its value.
	List(ctx context.Context, prefix string) (map[string]string, error)
}

// EtcdKV is KV on an etcd client.
type EtcdKV struct{ Client *clientv3.Client }

// Create implements KV with a transaction on the key's absence.
func (e EtcdKV) Create(ctx context.Context, key, value string) (bool, string, error) {
	resp, err := e.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value)).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return false, "", err
	}
	if resp.Succeeded {
		return true, "", nil
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		return false, string(kvs[0].Value), nil
	}
	return false, "", nil
}

// Delete implements KV with a transaction on the key's value.
func (e EtcdKV) Delete(ctx context.Context, key, value string) error {
	_, err := e.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", value)).
		Then(clientv3.OpDelete(key)).Commit()
	return err
}

// Get implements KV.
func (e EtcdKV) Get(ctx context.Context, key string) (string, bool, error) {
	resp, err := e.Client.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return "", false, err
	}
	return string(resp.Kvs[0].Value), true, nil
}

// List implements KV with a prefix range read.
func (e EtcdKV) List(ctx context.Context, prefix string) (map[string]string, error) {
	resp, err := e.Client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out, nil
}

// MemKV is an in-memory KV for tests, with the same semantics.
type MemKV struct {
	mu sync.Mutex
	m  map[string]string
}

// NewMemKV returns an empty MemKV.
func NewMemKV() *MemKV { return &MemKV{m: map[string]string{}} }

// Create implements KV.
func (m *MemKV) Create(_ context.Context, key, value string) (bool, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.m[key]; ok {
		return false, v, nil
	}
	m.m[key] = value
	return true, "", nil
}

// Delete implements KV.
func (m *MemKV) Delete(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m[key] == value {
		delete(m.m, key)
	}
	return nil
}

// Get implements KV.
func (m *MemKV) Get(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok, nil
}

// List implements KV.
func (m *MemKV) List(_ context.Context, prefix string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

// Keys returns the stored keys, sorted (for tests).
func (m *MemKV) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
