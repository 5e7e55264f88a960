package registry

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"

	"github.com/wharf-io/wharf/internal/apiserver/scheme"
)

// StorageMediaType is how objects are encoded in etcd: protobuf, as
// kube-apiserver stores them (smaller and faster to decode than JSON).
const StorageMediaType = runtime.ContentTypeProtobuf

// EtcdOptions makes the RESTOptions of each resource: its etcd prefix
// (/registry/<group>/<resource>, or /registry/<resource> for the core
// group), its storage codec, and a watch cache in front.
type EtcdOptions struct {
	// Transport is how to reach etcd (endpoints, TLS files).
	Transport storagebackend.TransportConfig
	// Prefix is the key prefix of every object; "/registry" by default.
	Prefix string
	// CompactionInterval is how often the server compacts etcd history; each
	// compaction goes to the revision seen one interval earlier, so about
	// that much history is always kept. 0 turns compaction off.
	CompactionInterval time.Duration
	// NoWatchCache serves every read from etcd (tests of the raw store).
	NoWatchCache bool

	byResource map[schema.GroupResource]*Resource
}

// NewEtcdOptions returns options for defs with upstream's defaults.
func NewEtcdOptions(transport storagebackend.TransportConfig, defs []*Resource) *EtcdOptions {
	o := &EtcdOptions{
		Transport:          transport,
		Prefix:             "/registry",
		CompactionInterval: storagebackend.DefaultCompactInterval,
		byResource:         map[schema.GroupResource]*Resource{},
	}
	for _, d := range defs {
		o.byResource[d.GroupResource()] = d
	}
	return o
}

// GetRESTOptions implements generic.RESTOptionsGetter.
func (o *EtcdOptions) GetRESTOptions(gr schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	def, ok := o.byResource[gr]
	if !ok {
		return generic.RESTOptions{}, fmt.Errorf("no storage defined for %s", gr)
	}
	cfg := storagebackend.NewDefaultConfig(o.Prefix, nil)
	cfg.Transport = o.Transport
	cfg.CompactionInterval = o.CompactionInterval
	codec, versioner, err := serverstorage.NewStorageCodec(serverstorage.StorageCodecConfig{
		StorageMediaType:  StorageMediaType,
		StorageSerializer: scheme.Codecs,
		StorageVersion:    def.StorageGroupVersion(),
		MemoryVersion:     schema.GroupVersion{Group: def.GroupVersion.Group, Version: runtime.APIVersionInternal},
		Config:            *cfg,
	})
	if err != nil {
		return generic.RESTOptions{}, err
	}
	cfg.Codec = codec
	cfg.EncodeVersioner = versioner
	storageGR := def.StorageGroupResource()
	prefix := storageGR.Resource
	if storageGR.Group != "" {
		prefix = storageGR.Group + "/" + storageGR.Resource
	}
	decorator := genericregistry.StorageWithCacher()
	if o.NoWatchCache {
		decorator = generic.UndecoratedStorage
	}
	return generic.RESTOptions{
		StorageConfig:           cfg.ForResource(storageGR),
		Decorator:               decorator,
		EnableGarbageCollection: true,
		DeleteCollectionWorkers: 1,
		ResourcePrefix:          prefix,
	}, nil
}
