# syntax=docker/dockerfile:1
#
# Two images from one build of two static binaries, /manager (the operator) and
# /proxychain (the data plane: the sidecar, its init step, and the server end of a hop):
#
#   default target: distroless static, non-root, holding both binaries. It runs the
#     manager, explicit-mode sidecars and hop servers.
#   --target sidecar: /proxychain on Debian slim with iptables, because the injected
#     init container (`proxychain init`, transparent mode) installs its rules with
#     iptables-restore and ip6tables-restore. The chart's sidecar.image defaults to it.
#
# `make docker-build` builds both (BuildKit). No container engine runs in this
# repository's CI, so CI never builds this file.
#
#   docker build -t ghcr.io/proxychain/proxychain:dev --build-arg VERSION=dev .
#   docker build -t ghcr.io/proxychain/proxychain-sidecar:dev --build-arg VERSION=dev --target sidecar .

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src

# Dependencies first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY proxy/ proxy/

# Static (no cgo), reproducible paths (-trimpath), the version stamped in.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    ldflags="-s -w -X github.com/proxychain/proxychain/internal/version.Version=${VERSION}"; \
    for cmd in manager proxychain; do \
      CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
        go build -trimpath -ldflags "${ldflags}" -o /out/${cmd} ./cmd/${cmd}; \
    done

FROM debian:bookworm-slim AS sidecar
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/proxychain /proxychain
# The pod's securityContext decides: runAsUser 1337 for the sidecar, 0 with NET_ADMIN
# and NET_RAW (nothing privileged) for the init step.
USER 65532:65532
ENTRYPOINT ["/proxychain"]

# The default target, last in the file.
# distroless/static: no shell, no package manager, CA certificates and /etc/passwd
# entries for nonroot (65532). The sidecar container's runAsUser (1337 by default)
# overrides the user below; the manager runs as it.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/manager /manager
COPY --from=builder /out/proxychain /proxychain
USER 65532:65532
ENTRYPOINT ["/manager"]
