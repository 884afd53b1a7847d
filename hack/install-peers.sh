#!/usr/bin/env bash
# install-peers.sh makes sure the real protocol peers the interop suites test
# against exist on this machine:
#   - Debian's v2ray (4.34) and shadowsocks-libev (ss-server, ss-local, ss-tunnel),
#     plus iptables, curl and iproute2, installed with apt-get;
#   - Xray-core, built from the Go module proxy at the version pinned in
#     hack/xray/go.mod, into bin/xray.
#
# It is idempotent: a second run changes nothing. The xray binary is cached
# outside the checkout, keyed by version and the hash of hack/xray/go.sum, so a
# fresh clone on the same machine copies it instead of rebuilding.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
xray_module="${repo_root}/hack/xray"
bin_dir="${repo_root}/bin"

log() { printf 'install-peers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# as_root runs a command as root, through sudo when we are not root already.
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		# Without a terminal (go test runs us), sudo must fail rather than wait for a password.
		if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
	else
		die "need root (or sudo) to run: $*"
	fi
}

install_debian_packages() {
	local wanted=(v2ray shadowsocks-libev iptables curl iproute2)
	local missing=() pkg
	for pkg in "${wanted[@]}"; do
		if dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
			log "package ${pkg}: installed ($(dpkg-query -W -f='${Version}' "${pkg}"))"
		else
			missing+=("${pkg}")
		fi
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		return
	fi
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
	log "installing packages: ${missing[*]}"
	# Update the index only when something is missing: a warm machine stays offline.
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

check_debian_peers() {
	local name
	for name in v2ray ss-server ss-local ss-tunnel; do
		command -v "${name}" >/dev/null 2>&1 || die "${name} not on PATH after installing its package"
	done
	local v2ray_version
	v2ray_version="$(v2ray -version 2>/dev/null || true)"
	v2ray_version="${v2ray_version%%$'\n'*}"
	log "v2ray: ${v2ray_version:-<no version output>}"
	# The suites speak the v4 command line (v2ray -config file) and alterId 64 VMess.
	if [[ "${v2ray_version}" != "V2Ray 4.34."* ]]; then
		log "WARNING: expected V2Ray 4.34.x; the v2ray interop suites may not match this version"
	fi
	log "shadowsocks-libev: $(command -v ss-server) $(command -v ss-local) $(command -v ss-tunnel)"
}

# build_xray builds xray at the pinned version into cache_dir/xray. It builds into a
# temporary directory and renames, so an interrupted build never leaves a half-written
# binary in the cache.
build_xray() {
	local version="$1" cache_root="$2" cache_dir="$3"
	log "xray: building github.com/xtls/xray-core/main@${version} with $(go env GOVERSION) (this takes minutes)"
	local start tmp
	start="$(date +%s)"
	tmp="$(mktemp -d "${cache_root}/build.XXXXXX")"
	if ! (cd "${xray_module}" && GOWORK=off nice -n 10 go build -trimpath -ldflags='-s -w -buildid=' \
		-o "${tmp}/xray" github.com/xtls/xray-core/main); then
		rm -rf "${tmp}"
		die "xray build failed"
	fi
	mkdir -p "${cache_dir}"
	mv "${tmp}/xray" "${cache_dir}/xray"
	rmdir "${tmp}"
	log "xray: built in $(( $(date +%s) - start ))s into ${cache_dir}"
}

install_xray() {
	command -v go >/dev/null 2>&1 || die "go not found; xray is built from the Go module proxy"
	local tool
	for tool in sha256sum cmp; do
		command -v "${tool}" >/dev/null 2>&1 || die "${tool} not found"
	done

	local version sum_hash cache_root cache_dir key
	version="$(cd "${xray_module}" && GOWORK=off go list -m -f '{{.Version}}' github.com/xtls/xray-core)"
	sum_hash="$(sha256sum "${xray_module}/go.sum" | cut -c1-16)"
	key="xray-${version}-${sum_hash}"
	cache_root="${XDG_CACHE_HOME:-${HOME}/.cache}/proxychain"
	cache_dir="${cache_root}/${key}"

	mkdir -p "${bin_dir}" "${cache_root}"
	local installed_key=""
	if [[ -x "${bin_dir}/xray" && -f "${bin_dir}/xray.key" ]]; then
		installed_key="$(cat "${bin_dir}/xray.key")"
	fi
	if [[ "${installed_key}" == "${key}" ]] && { [[ ! -x "${cache_dir}/xray" ]] || cmp -s "${bin_dir}/xray" "${cache_dir}/xray"; }; then
		log "xray: bin/xray is ${key}; nothing to build"
		if [[ ! -x "${cache_dir}/xray" ]]; then
			# Refill the cache, so the next clone on this machine copies instead of building.
			log "xray: saving bin/xray to ${cache_dir}"
			mkdir -p "${cache_dir}"
			cp "${bin_dir}/xray" "${cache_dir}/xray.tmp"
			mv "${cache_dir}/xray.tmp" "${cache_dir}/xray"
		fi
	else
		if [[ -x "${cache_dir}/xray" ]]; then
			log "xray: copying cached ${cache_dir}/xray to bin/xray"
		else
			build_xray "${version}" "${cache_root}" "${cache_dir}"
		fi
		cp "${cache_dir}/xray" "${bin_dir}/xray.tmp"
		mv "${bin_dir}/xray.tmp" "${bin_dir}/xray"
		printf '%s\n' "${key}" >"${bin_dir}/xray.key"
	fi

	local xray_version
	# Capture everything, then cut: piping into head would race xray into SIGPIPE.
	xray_version="$("${bin_dir}/xray" version)" || die "bin/xray version does not run"
	xray_version="${xray_version%%$'\n'*}"
	printf '%s\n' "${xray_version}" >"${bin_dir}/xray.version"
	log "xray: ${xray_version} (module ${version}; recorded in bin/xray.version)"
}

# Serialise concurrent runs: several test binaries may call us at once, and apt-get and
# the xray cache each take one writer at a time.
lock_dir="${XDG_CACHE_HOME:-${HOME}/.cache}/proxychain"
mkdir -p "${lock_dir}"
exec 9>"${lock_dir}/.install-peers.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

install_debian_packages
check_debian_peers
install_xray
log "all peers present"
