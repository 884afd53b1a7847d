// Package render turns a ProxyChain and the data of the Secrets it references into the
// data plane's config (proxy/config) and the credentials it reads from files. It is a
// pure function of its inputs, so the reconciler only does I/O around it.
//
// # Layout in the pod
//
// The sidecar mounts one projected volume at MountPath holding both the ConfigMap's
// config.json and every key of the credentials Secret. A projected volume is updated
// atomically as one payload, so a pod never sees a config.json whose credential files are
// from another revision. The rendered config names each credential by a path relative to
// its own directory (passwordFile, idFile, passFile), which proxy/config resolves
// against the config file's directory:
//
//	/etc/proxychain/config.json                  from ConfigMap <name>-proxychain
//	/etc/proxychain/<tag>-<server>-password      Shadowsocks password
//	/etc/proxychain/<tag>-<server>-<user>-id     VMess UUID
//	/etc/proxychain/<tag>-<server>-<user>-pass   SOCKS or HTTP password
//
// The same two objects work outside Kubernetes: put config.json and the credential files
// in one directory and run `proxychain run -c dir/config.json`.
//
// # Inbounds
//
// The rendered config carries the sidecar's inbounds on fixed loopback ports: in
// transparent mode a redirect inbound for connections captured by iptables REDIRECT, in
// explicit mode a SOCKS and an HTTP proxy for the pod's proxy environment variables.
package render
