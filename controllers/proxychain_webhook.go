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
	"github.com/proxychain/proxychain/proxy/router/match"
)

// ChainValidator rejects at admission what CEL cannot check: a proxySettings tag naming
// no outbound or its own, and cycles, whose path the message shows; and routing rule
// entries the data plane cannot read, such as "geosite:cn" or the ports "443-80". It uses
// the data plane's own checks (package chain, through render.CheckChain, and the rule
// parsers of package match), and the reconciler checks the same again, by rendering, for
// objects admitted while the webhook was not running.
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

// ValidateCreate checks a new chain.
func (ChainValidator) ValidateCreate(_ context.Context, pc *v1alpha1.ProxyChain) (admission.Warnings, error) {
	return nil, validate(pc)
}

// ValidateUpdate checks the updated chain when its spec changes. An update of
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
	var errs field.ErrorList
	if ce, ok := render.AsChainError(render.CheckChain(&pc.Spec)); ok {
		for _, p := range ce.Problems {
			path := fieldPath(p.Field)
			if p.Value != "" {
				errs = append(errs, field.Invalid(path, p.Value, p.Message))
			} else {
				errs = append(errs, field.Forbidden(path, p.Message))
			}
		}
	}
	errs = append(errs, validateRouting(pc.Spec.Routing, field.NewPath("spec", "routing"))...)
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(v1alpha1.GroupVersion.WithKind("ProxyChain").GroupKind(), pc.Name, errs)
}

// validateRouting reads each rule's entries with the parsers the data plane's router
// uses, so that what it cannot load is denied here, at the entry, rather than admitted
// and reported by the reconciler as Ready=False.
func validateRouting(r *v1alpha1.Routing, path *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	for i, rule := range r.Rules {
		p := path.Child("rules").Index(i)
		for k, d := range rule.Domain {
			if _, err := match.ParseDomain(d); err != nil {
				errs = append(errs, field.Invalid(p.Child("domain").Index(k), d, err.Error()))
			}
		}
		for k, ip := range rule.IP {
			if _, err := match.ParseIP(ip); err != nil {
				errs = append(errs, field.Invalid(p.Child("ip").Index(k), ip, err.Error()))
			}
		}
		if rule.Port != "" {
			if _, err := match.ParsePorts(rule.Port); err != nil {
				errs = append(errs, field.Invalid(p.Child("port"), rule.Port, err.Error()))
			}
		}
	}
	return errs
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
