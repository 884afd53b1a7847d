// Package v1alpha1 holds the proxychain.io/v1alpha1 API: ProxyChain, a chain of encrypted
// proxy hops written in V2Ray's vocabulary, with credentials kept in Secrets.
//
// +kubebuilder:object:generate=true
// +groupName=proxychain.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "proxychain.io", Version: "v1alpha1"}

	// SchemeBuilder registers the package's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
