//go:build tools

// Package tools pins modules that several packages are about to use, so go.mod is not
// edited by many hands at once.
package tools

import (
	_ "go.uber.org/goleak"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/crypto/sha3"
	_ "golang.org/x/net/nettest"
)
