package scheme

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FieldLabels lists, per kind, the field selector labels that upstream
// accepts beyond metadata.name and metadata.namespace. The registry computes
// the same fields for each object (registry.fieldsOf), so a selector that
// passes here can always be evaluated.
var FieldLabels = map[schema.GroupVersionKind][]string{
	corev1.SchemeGroupVersion.WithKind("Pod"): {
		"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
		"spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
	},
	corev1.SchemeGroupVersion.WithKind("Event"): {
		"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
		"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
		"reason", "reportingComponent", "source", "type",
	},
	eventsv1.SchemeGroupVersion.WithKind("Event"): {
		"regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
		"regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
		"reason", "reportingController", "type",
	},
	corev1.SchemeGroupVersion.WithKind("Secret"):                {"type"},
	corev1.SchemeGroupVersion.WithKind("Namespace"):             {"status.phase"},
	corev1.SchemeGroupVersion.WithKind("Node"):                  {"spec.unschedulable"},
	corev1.SchemeGroupVersion.WithKind("ReplicationController"): {"status.replicas"},
	corev1.SchemeGroupVersion.WithKind("Service"):               {"spec.clusterIP", "spec.type"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:          {"status.replicas"},
}

// eventsV1ToCore maps events.k8s.io/v1 field labels to the core/v1 fields the
// shared storage indexes.
var eventsV1ToCore = map[string]string{
	"regarding.kind": "involvedObject.kind", "regarding.namespace": "involvedObject.namespace",
	"regarding.name": "involvedObject.name", "regarding.uid": "involvedObject.uid",
	"regarding.apiVersion": "involvedObject.apiVersion", "regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath": "involvedObject.fieldPath", "reportingController": "reportingComponent",
}

func registerFieldLabels(s *runtime.Scheme) error {
	for gvk, labels := range FieldLabels {
		allowed := map[string]bool{"metadata.name": true, "metadata.namespace": true}
		for _, l := range labels {
			allowed[l] = true
		}
		kind := gvk
		err := s.AddFieldLabelConversionFunc(gvk, func(label, value string) (string, string, error) {
			if !allowed[label] {
				return "", "", fmt.Errorf("field label not supported: %s", label)
			}
			if kind.Group == eventsv1.GroupName {
				if core, ok := eventsV1ToCore[label]; ok {
					label = core
				}
			}
			return label, value, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
