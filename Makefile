# Wharf's build. `make up` builds and starts a one-machine cluster;
# `make test` installs what the tests need and runs them.
GO      ?= go
BIN     ?= bin/wharf
K8S_VERSION := v1.37.2
# kubectl inside wharf reports the Kubernetes release it was built from.
LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
           -X k8s.io/component-base/version.gitMajor=1 \
           -X k8s.io/component-base/version.gitMinor=37 \
           -X k8s.io/component-base/version.gitTreeState=clean
export WHARF_LDFLAGS := $(LDFLAGS)

APT_PACKAGES := nftables iptables conntrack iproute2 curl util-linux bind9-dnsutils
# The CNI reference plugins Wharf installs into <data-dir>/cni/bin, built
# beside the wharf binary (bin/cni/) at the version go.mod pins.
CNI_PLUGINS := $(addprefix github.com/containernetworking/plugins/plugins/,\
	main/bridge ipam/host-local main/loopback meta/portmap main/macvlan)

.PHONY: build cni-plugins up test test-short deps generate bench clean

build: cni-plugins
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/wharf
	$(GO) build -o $(dir $(BIN))wharf-init ./cmd/wharf-init

cni-plugins:
	@mkdir -p $(dir $(BIN))cni
	$(GO) build -o $(dir $(BIN))cni/ $(CNI_PLUGINS)

up: build
	./$(BIN) up

# deps installs the system packages the tests use (root, Debian).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; }

test: deps
	$(GO) test -count=1 -timeout 40m ./...

test-short:
	$(GO) test -short ./...

generate:
	./hack/update-openapi.sh

bench: build
	./bench/apiserver.sh

clean:
	rm -rf bin
