// Package load holds the data plane's robustness checks: limits (handshake deadline, idle
// timeout, connection cap, memory per idle connection), hostile input to the Shadowsocks
// and VMess inbounds, faults in a chain (a hop killed mid-stream, a hop that never
// answers, a target that resets) and scale (10,000 idle connections through four hops).
//
// The cheap checks run with every `go test`. The heavy ones (faults with real processes,
// the scale run) need the load build tag:
//
//	go test -tags load -run . -v -timeout 20m ./test/load
//
// Each check logs the figure it proves with t.Logf, under "figure:", so `-v` output is
// what docs/reliability.md quotes. Everything runs on loopback and is bounded in count and
// time.
package load
