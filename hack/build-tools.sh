#!/usr/bin/env bash
# Builds the tools the build and tests need, from the Go module proxy only:
#
#   bin/controller-gen, bin/helm, bin/setup-envtest          (hack/tools)
#   bin/k8s/<K8S>-<os>-<arch>/{kube-apiserver,kubectl}      (hack/tools/k8s)
#   bin/k8s/<K8S>-<os>-<arch>/etcd                          (hack/tools/etcd)
#
# The bin/k8s layout is the one setup-envtest reads, so
#   bin/setup-envtest use -i --bin-dir bin <K8S> -p path
# prints the KUBEBUILDER_ASSETS directory without touching the network.
#
# Idempotent: a binary whose stamp matches its cache key is left alone. Each
# built binary is also kept in ${XDG_CACHE_HOME:-$HOME/.cache}/proxychain/tools/<key>/
# (key = tool, version and a hash of its module's go.mod/go.sum, the ldflags and
# the Go version), so a fresh clone on the same machine, such as CI's, restores
# instead of spending minutes of CPU rebuilding Kubernetes.
#
# Usage: hack/build-tools.sh [TOOL...]   (default: all; names as in bin/)
set -euo pipefail

k8s_version=1.37.2
etcd_version=3.6.16
helm_version=v3.22.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${root}/bin"
goos="$(go env GOOS)"
goarch="$(go env GOARCH)"
envtest_dir="${bin}/k8s/${k8s_version}-${goos}-${goarch}"
stamps="${bin}/.stamps"
cache="${XDG_CACHE_HOME:-${HOME}/.cache}/proxychain/tools"

# Static binaries, like the upstream release builds; the tool modules are
# their own modules and must not join a go.work someone adds at the root.
export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"

k8s_minor="${k8s_version#*.}"
k8s_minor="${k8s_minor%%.*}"
k8s_major="${k8s_version%%.*}"

# Without these the server reports v0.0.0-master, which kubectl and
# envtest's version checks reject.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	k8s_ldflags+=" -X ${pkg}.gitVersion=v${k8s_version} -X ${pkg}.gitMajor=${k8s_major} -X ${pkg}.gitMinor=${k8s_minor}"
	k8s_ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done

# Helm's built-in Kubernetes version defaults to 1.20 outside its Makefile,
# and `helm template` then refuses charts whose kubeVersion needs more.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version} -X helm.sh/helm/v3/internal/version.metadata="
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
	helm_ldflags+=" -X ${pkg}.k8sVersionMajor=${k8s_major} -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done

etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-v${etcd_version}"

# name|module dir|package|version|ldflags|output
tools=(
	"controller-gen|hack/tools|sigs.k8s.io/controller-tools/cmd/controller-gen|v0.23.0|-s -w|${bin}/controller-gen"
	"helm|hack/tools|helm.sh/helm/v3/cmd/helm|${helm_version}|${helm_ldflags}|${bin}/helm"
	"setup-envtest|hack/tools|sigs.k8s.io/controller-runtime/tools/setup-envtest|v0.25.1|-s -w|${bin}/setup-envtest"
	"etcd|hack/tools/etcd|go.etcd.io/etcd/server/v3|v${etcd_version}|${etcd_ldflags}|${envtest_dir}/etcd"
	"kube-apiserver|hack/tools/k8s|k8s.io/kubernetes/cmd/kube-apiserver|v${k8s_version}|${k8s_ldflags}|${envtest_dir}/kube-apiserver"
	"kubectl|hack/tools/k8s|k8s.io/kubernetes/cmd/kubectl|v${k8s_version}|${k8s_ldflags}|${envtest_dir}/kubectl"
)

log() { echo "build-tools: $*" >&2; }

wanted() {
	local name="$1" s
	[[ ${#selected[@]} -eq 0 ]] && return 0
	for s in "${selected[@]}"; do
		[[ "$s" == "$name" ]] && return 0
	done
	return 1
}

cache_key() {
	local name="$1" moddir="$2" version="$3" ldflags="$4"
	local sum
	sum="$(
		{
			cat "${root}/${moddir}/go.mod" "${root}/${moddir}/go.sum"
			printf '%s\n' "$ldflags" "$(go env GOVERSION)" "${goos}/${goarch}" "CGO_ENABLED=${CGO_ENABLED}"
		} | sha256sum
	)"
	echo "${name}-${version}-${goos}-${goarch}-${sum:0:16}"
}

selected=("$@")
for s in "${selected[@]}"; do
	known=false
	for t in "${tools[@]}"; do
		[[ "${t%%|*}" == "$s" ]] && known=true
	done
	$known || {
		log "unknown tool ${s}"
		exit 2
	}
done

mkdir -p "$bin" "$envtest_dir" "$stamps" "$cache"

# One run at a time per machine: two `make test`s racing would otherwise both
# spend minutes building the same binary.
exec 9>"${cache}/.lock"
if ! flock -n 9; then
	log "waiting for another build-tools run to finish"
	flock 9
fi

built=() restored=() current=()
start_all=$SECONDS
for t in "${tools[@]}"; do
	IFS='|' read -r name moddir pkg version ldflags out <<<"$t"
	wanted "$name" || continue

	key="$(cache_key "$name" "$moddir" "$version" "$ldflags")"
	stamp="${stamps}/${name}"
	if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
		current+=("$name")
		continue
	fi

	cached="${cache}/${key}/${name}"
	if [[ -x "$cached" ]]; then
		log "${name} ${version}: restoring from ${cache}/${key}"
		restored+=("$name")
	else
		log "${name} ${version}: building ${pkg} (in ${moddir}) ..."
		start=$SECONDS
		tmpdir="$(mktemp -d "${cache}/.build.XXXXXX")"
		if ! (cd "${root}/${moddir}" && nice -n 10 go build -ldflags "$ldflags" -o "${tmpdir}/${name}" "$pkg"); then
			rm -rf "$tmpdir"
			log "${name} ${version}: build failed"
			exit 1
		fi
		mkdir -p "${cache}/${key}"
		mv -f "${tmpdir}/${name}" "$cached"
		rmdir "$tmpdir"
		log "${name} ${version}: built in $((SECONDS - start))s"
		built+=("$name")
	fi
	# Mark the entry as used and drop this tool's entries unused for a month,
	# so version bumps do not pile up hundreds of MiB.
	touch "${cache}/${key}"
	find "$cache" -mindepth 1 -maxdepth 1 -type d -name "${name}-v*" -mtime +30 -exec rm -rf {} +
	# Copy via a temp name so a running binary is never half-written.
	cp -f "$cached" "${out}.tmp.$$"
	mv -f "${out}.tmp.$$" "$out"
	echo "$key" >"$stamp"
done

# The point of the layout: setup-envtest must find the assets offline.
if wanted setup-envtest || wanted kube-apiserver; then
	if [[ -x "${bin}/setup-envtest" && -x "${envtest_dir}/kube-apiserver" && -x "${envtest_dir}/etcd" && -x "${envtest_dir}/kubectl" ]]; then
		assets="$("${bin}/setup-envtest" use -i --bin-dir "$bin" "$k8s_version" -p path)"
		log "KUBEBUILDER_ASSETS=${assets}"
	fi
fi

join() {
	local IFS=,
	echo "${*:-none}"
}
echo "build-tools: built: $(join "${built[@]}"); restored: $(join "${restored[@]}"); up to date: $(join "${current[@]}") ($((SECONDS - start_all))s)"
