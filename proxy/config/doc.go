// Package config loads V2Ray v4 JSON configurations: comments (//, /* */, #) and trailing
// commas are allowed, every error names its JSON path
// (outbounds[2].settings.servers[0].method: unsupported cipher "aes-256-cfb8"), and fields
// proxychain does not implement are listed in one warning rather than dropped silently.
//
// The package is the contract between the operator, which renders a Config, and the data
// plane, which loads it; it imports nothing from Kubernetes.
package config
