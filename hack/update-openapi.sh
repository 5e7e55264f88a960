#!/usr/bin/env bash
# Regenerates the OpenAPI definitions of the k8s.io/api types Wharf serves.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(
  k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/autoscaling/v1 k8s.io/api/discovery/v1
  k8s.io/api/networking/v1 k8s.io/api/extensions/v1beta1 k8s.io/api/coordination/v1
  k8s.io/api/rbac/v1 k8s.io/api/events/v1 k8s.io/api/authorization/v1 k8s.io/api/authentication/v1
  k8s.io/api/policy/v1
  k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/util/intstr
  k8s.io/apimachinery/pkg/api/resource k8s.io/apimachinery/pkg/version
)
go tool openapi-gen --output-dir internal/generated/openapi \
  --output-pkg github.com/wharf-io/wharf/internal/generated/openapi \
  --output-file zz_generated.openapi.go --go-header-file hack/boilerplate.go.txt \
  --report-filename /dev/null "${pkgs[@]}"
