// Package version holds the build's version, set at link time with
// -X github.com/proxychain/proxychain/internal/version.Version=...
package version

// Version is the release this binary was built from; "dev" for an unversioned build.
var Version = "dev"
