package controllers

import (
	"context"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
)

// ChainValidator rejects at admission what CEL cannot check: a proxySettings tag naming
// no outbound or its own, and cycles, whose path the message shows. It uses the data
// plane's own graph check (package chain, through render.CheckChain), and the reconciler
// checks the same again for objects admitted while the webhook was not running.
//
// failurePolicy is Fail: with the manager down nothing would render the chain anyway.
type ChainValidator struct{}

// +kubebuilder:webhook:path=/validate-proxychain-io-v1alpha1-proxychain,mutating=false,failurePolicy=fail,sideEffects=None,groups=proxychain.io,resources=proxychains,verbs=create;update,versions=v1alpha1,name=vproxychain.proxychain.io,admissionReviewVersions=v1

var _ admission.Validator[*v1alpha1.ProxyChain] = ChainValidator{}

// SetupWebhookWithManager registers the validator with the manager's webhook server.
func SetupWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.ProxyChain{}).
		WithValidator(ChainValidator{}).
		Complete()
}

// ValidateCreate checks a new chain's graph.
func (ChainValidator) ValidateCreate(_ context.Context, pc *v1alpha1.ProxyChain) (admission.Warnings, error) {
	return nil, validate(pc)
}

// ValidateUpdate checks the updated chain's graph when its spec changes. An update of
// metadata alone, or of a chain being deleted, is allowed as it is: a chain stored
// invalid (before the webhook ran, or by an older operator) must still be able to be
// labeled, and to lose its finalizers and go.
func (ChainValidator) ValidateUpdate(_ context.Context, old, pc *v1alpha1.ProxyChain) (admission.Warnings, error) {
	if pc.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, pc.Spec) {
		return nil, nil
	}
	return nil, validate(pc)
}

// ValidateDelete allows every deletion.
func (ChainValidator) ValidateDelete(context.Context, *v1alpha1.ProxyChain) (admission.Warnings, error) {
	return nil, nil
}

func validate(pc *v1alpha1.ProxyChain) error {
	ce, ok := render.AsChainError(render.CheckChain(&pc.Spec))
	if !ok {
		return nil
	}
	var errs field.ErrorList
	for _, p := range ce.Problems {
		path := fieldPath(p.Field)
		if p.Value != "" {
			errs = append(errs, field.Invalid(path, p.Value, p.Message))
		} else {
			errs = append(errs, field.Forbidden(path, p.Message))
		}
	}
	return apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("ProxyChain").GroupKind(), pc.Name, errs)
}

// fieldPath turns "spec.outbounds[1].proxySettings.tag" into a field.Path.
func fieldPath(s string) *field.Path {
	var p *field.Path
	for _, part := range strings.Split(s, ".") {
		name, index, indexed := strings.Cut(part, "[")
		if p == nil {
			p = field.NewPath(name)
		} else {
			p = p.Child(name)
		}
		if i, err := strconv.Atoi(strings.TrimSuffix(index, "]")); indexed && err == nil {
			p = p.Index(i)
		}
	}
	return p
}
