// Package render turns a ProxyChain and the data of the Secrets it references into the
// data plane's config (proxy/config) and the credentials it reads from files. It is a
// pure function of its inputs, so the reconciler only does I/O around it.
//
// # Layout in the pod
//
// The sidecar mounts one projected volume at MountPath holding both the ConfigMap's
// config.json and every key of the credentials Secret. The kubelet swaps the volume's
// files in at once, but builds them from its own copy of each object, refreshed
// separately, and the reconciler writes the Secret, then the ConfigMap. So for a short
// window after a render that changes both (until the kubelet next syncs the pod), a pod
// can see a config.json with credential files from another revision. The sidecar refuses
// a pair that does not load and keeps its running config; a pair that loads is applied,
// so an outbound can briefly dial with a credential of the other revision. The matching
// pair is applied when it arrives.
//
// The rendered config names each credential by a path relative to its own directory
// (passwordFile, idFile, passFile), which proxy/config resolves against the config
// file's directory:
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
