package render

import (
	"fmt"
	"strings"
)

// ChainError is a spec the data plane cannot run: a proxySettings tag naming no
// outbound or its own, or a cycle.
type ChainError struct {
	Problems []Problem
}

// Problem is one fault of a chain, at a spec path.
type Problem struct {
	Field   string   // spec.outbounds[1].proxySettings.tag, or spec.outbounds for a cycle
	Value   string   // the offending proxySettings tag, if any
	Message string   // no outbound tagged "x"; outbound cycle: DOUS -> DOSG -> AliSG -> DOUS
	Cycle   []string // a cycle's tags, its first repeated at the end
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

func (e *ChainError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "render: " + strings.Join(parts, "; ")
}

// MissingKey is one credential reference that names no Secret, or no key of it.
type MissingKey struct {
	Field         string // spec path of the reference
	Secret, Key   string
	SecretMissing bool // the Secret itself is missing, not only the key
}

func (m MissingKey) String() string {
	if m.SecretMissing {
		return fmt.Sprintf("secret %q not found (%s)", m.Secret, m.Field)
	}
	return fmt.Sprintf("secret %q has no key %q (%s)", m.Secret, m.Key, m.Field)
}

// SecretNotFoundError lists every referenced Secret or key that is missing.
type SecretNotFoundError struct {
	Missing []MissingKey
}

// maxListedMissing is how many missing references the message of a SecretNotFoundError
// names; it counts the rest. A chain can hold thousands of references, and a condition's
// message at most 32768 bytes: ten, at most about 600 bytes each, stay well under it.
const maxListedMissing = 10

func (e *SecretNotFoundError) Error() string {
	n := min(len(e.Missing), maxListedMissing)
	parts := make([]string, n, n+1)
	for i, m := range e.Missing[:n] {
		parts[i] = m.String()
	}
	if more := len(e.Missing) - n; more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return "render: " + strings.Join(parts, "; ")
}

// InvalidCredentialError is a credential whose value cannot be used. It never holds the
// value.
type InvalidCredentialError struct {
	Field       string
	Secret, Key string
	Reason      string
}

func (e *InvalidCredentialError) Error() string {
	return fmt.Sprintf("render: secret %q key %q (%s) %s", e.Secret, e.Key, e.Field, e.Reason)
}
