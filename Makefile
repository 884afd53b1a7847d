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
LDFLAGS    := -s -w -X github.com/proxychain/proxychain/internal/version.Version=$(VERSION)
# Bounded so a stuck test cannot eat CI's budget; the slowest suite takes a few minutes.
TEST_FLAGS ?= -timeout 20m
FUZZTIME   ?= 20s

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: fmt
fmt: ## Format the Go code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: test
test: tools peers vet ## Run every suite: unit, fuzz seeds, envtest (real apiserver), interop (real peers).
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: test-short
test-short: ## Unit tests only: no real apiserver, no peers.
	$(GO) test -short $(TEST_FLAGS) ./...

.PHONY: bench
bench: build peers ## Benchmark our client against v2ray and Xray through the same hops; see docs/benchmarks.md.
	$(GO) run ./test/bench

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each.
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

##@ Build

.PHONY: build
build: ## Build the data plane (bin/proxychain) and the operator (bin/manager).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/proxychain ./cmd/proxychain
	@if [ -d cmd/manager ]; then CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/manager ./cmd/manager; fi

##@ Demo

.PHONY: demo
demo: build ## Run the main job: a chain of hops on loopback and a request through it.
	$(GO) run ./hack/demo

##@ Dependencies

.PHONY: tools
tools: ## Build the test control plane (kube-apiserver, etcd, kubectl) and controller-gen, helm, setup-envtest into bin/.
	@bash hack/build-tools.sh

.PHONY: peers
peers: ## Install the interop peers: v2ray 4.34 and shadowsocks-libev (apt), Xray (built into bin/).
	@bash hack/install-peers.sh
