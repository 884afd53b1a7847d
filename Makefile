# proxychain — chained proxy forwarding for Kubernetes pods.
# `make help` lists the targets. `make demo` and `make test` are the two that matter on a
# fresh machine; both install what they need.

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
K8S_VERSION ?= 1.37.2
LOCALBIN    ?= $(CURDIR)/bin
ENVTEST_DIR ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-linux-amd64
# Tests that talk to a real apiserver find its binaries here (controller-runtime envtest).
export KUBEBUILDER_ASSETS ?= $(ENVTEST_DIR)

GO         ?= go
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
HELM       ?= $(LOCALBIN)/helm
CHART      ?= charts/proxychain
IMG        ?= ghcr.io/proxychain/proxychain:$(VERSION)
SIDECAR_IMG ?= ghcr.io/proxychain/proxychain-sidecar:$(VERSION)
CONTAINER_TOOL ?= docker
LDFLAGS    := -s -w -X github.com/proxychain/proxychain/internal/version.Version=$(VERSION)
# Bounded so a stuck test cannot eat CI's budget; the slowest suite takes a few minutes.
TEST_FLAGS ?= -timeout 20m
FUZZTIME   ?= 20s
# Extra flags for hack/demo, e.g. DEMO_FLAGS=-keep to keep its configs and logs.
DEMO_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD, RBAC role and webhook manifests from the markers into config/, and copy the CRD and role into the chart.
	@test -x $(CONTROLLER_GEN) || bash hack/build-tools.sh controller-gen
	$(CONTROLLER_GEN) rbac:roleName=proxychain-manager-role crd webhook paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook
	cp config/crd/bases/proxychain.io_proxychains.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml

.PHONY: generate
generate: ## Generate the API types' DeepCopy methods (zz_generated.deepcopy.go).
	@test -x $(CONTROLLER_GEN) || bash hack/build-tools.sh controller-gen
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: helm-lint
helm-lint: ## Lint the Helm chart with default and non-default values.
	@test -x $(HELM) || bash hack/build-tools.sh helm
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set certManager.enabled=true --set sidecar.uid=2000

.PHONY: fmt
fmt: ## Format the Go code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: test
# The second run takes the relay and its sockets again under the race detector: they are
# shared by goroutines and, through parking, by the poller.
test: tools peers vet ## Run every suite: unit, fuzz seeds, envtest (real apiserver), interop (real peers).
	$(GO) test $(TEST_FLAGS) ./...
	$(GO) test -race $(TEST_FLAGS) ./proxy

.PHONY: test-short
test-short: ## Unit tests only: no real apiserver, no peers.
	$(GO) test -short $(TEST_FLAGS) ./...

.PHONY: bench
bench: build peers ## Benchmark our client against v2ray and Xray through the same hops; see docs/benchmarks.md.
	$(GO) run ./test/bench

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 20s).
	GO=$(GO) FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: test-load
test-load: ## Limits, faults, hostile input and the 9,900-connection scale run; see docs/reliability.md.
	$(GO) test -tags load -count=1 -v -timeout 20m ./test/load

##@ Build

.PHONY: build
build: ## Build the data plane (bin/proxychain) and the operator (bin/manager).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/proxychain ./cmd/proxychain
	@if [ -d cmd/manager ]; then CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/manager ./cmd/manager; fi

.PHONY: docker-build
docker-build: ## Build the images (IMG: both binaries, distroless; SIDECAR_IMG: with iptables). Not built in CI: no container engine runs there.
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) -t $(IMG) .
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --target sidecar -t $(SIDECAR_IMG) .

##@ Demo

.PHONY: demo
demo: build ## Run the main job on a local control plane: ProxyChain -> operator -> sidecar -> 4 hops on loopback -> a page.
	@test -x $(ENVTEST_DIR)/kube-apiserver -a -x $(ENVTEST_DIR)/etcd -a -x $(ENVTEST_DIR)/kubectl || bash hack/build-tools.sh etcd kube-apiserver kubectl
	$(GO) run ./hack/demo $(DEMO_FLAGS)

.PHONY: demo-local
demo-local: build ## The data plane alone, no Kubernetes: the seed's client config through 4 hops on loopback.
	$(GO) run ./hack/demo -standalone

##@ Dependencies

.PHONY: tools
tools: ## Build the test control plane (kube-apiserver, etcd, kubectl) and controller-gen, helm, setup-envtest into bin/.
	@bash hack/build-tools.sh

.PHONY: peers
peers: ## Install the interop peers: v2ray 4.34 and shadowsocks-libev (apt), Xray (built into bin/).
	@bash hack/install-peers.sh
