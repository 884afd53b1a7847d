package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/proxychain/proxychain/api/v1alpha1"
)

// The pod annotations the injector reads and writes.
const (
	// AnnotationChain opts a pod in: it names a ProxyChain in the pod's namespace. The
	// webhook configuration's matchConditions send only pods carrying it to the injector.
	AnnotationChain = "proxychain.io/chain"
	// AnnotationMode overrides the chain's spec.egress.mode for one pod.
	AnnotationMode = "proxychain.io/mode"
	// AnnotationExcludeCIDRs and AnnotationExcludePorts add to the chain's
	// spec.egress.excludeCIDRs and excludePorts (comma-separated).
	AnnotationExcludeCIDRs = "proxychain.io/exclude-cidrs"
	AnnotationExcludePorts = "proxychain.io/exclude-ports"

	// AnnotationInjected and AnnotationConfigHash are written by the injector: the pod
	// has the sidecar, and which rendered config (the chain's status.configHash) it had
	// at admission.
	AnnotationInjected   = "proxychain.io/injected"
	AnnotationConfigHash = "proxychain.io/config-hash"
)

// PodWebhookPath is where the API server sends pod admission requests.
const PodWebhookPath = "/mutate-v1-pod"

// The injector's webhook: pods are sent to it only when they carry the chain annotation
// (matchConditions, evaluated by the API server), and never from kube-system or the
// manager's namespace (namespaceSelector; the chart substitutes its own namespace for
// proxychain-system). failurePolicy Fail: an opted-in pod is refused rather than started
// without its sidecar; pods without the annotation never reach the webhook, so a manager
// outage blocks only opted-in pods. CREATE only: a pod's containers cannot change after.
//
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpod.proxychain.io,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded,timeoutSeconds=5,patch=`{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","proxychain-system"]}]},"matchConditions":[{"name":"opted-in","expression":"has(object.metadata.annotations) && 'proxychain.io/chain' in object.metadata.annotations"}]}`

// PodInjector is the mutating admission webhook that adds the proxychain sidecar to
// pods annotated with AnnotationChain.
type PodInjector struct {
	// Reader reads ProxyChains from the API server, not a cache: a chain that just
	// became Ready must not be refused because an informer lags.
	Reader  client.Reader
	Decoder admission.Decoder
	Sidecar SidecarConfig
}

var _ admission.Handler = (*PodInjector)(nil)

// SetupPodWebhookWithManager registers the injector with the manager's webhook server.
func SetupPodWebhookWithManager(mgr ctrl.Manager, sidecar SidecarConfig) error {
	if err := sidecar.Validate(); err != nil {
		return err
	}
	mgr.GetWebhookServer().Register(PodWebhookPath, &webhook.Admission{Handler: &PodInjector{
		Reader:  mgr.GetAPIReader(),
		Decoder: admission.NewDecoder(mgr.GetScheme()),
		Sidecar: sidecar,
	}})
	return nil
}

// Handle injects the sidecar, or denies the pod with a message saying why it cannot
// have one.
func (p *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("proxychain injects at creation only")
	}
	var pod corev1.Pod
	if err := p.Decoder.Decode(req, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	chainName, ok := pod.Annotations[AnnotationChain]
	if !ok {
		return admission.Allowed("no " + AnnotationChain + " annotation")
	}
	if chainName == "" {
		return admission.Denied(fmt.Sprintf("annotation %s: empty; name a ProxyChain in namespace %q", AnnotationChain, req.Namespace))
	}
	opts, err := parseAnnotations(pod.Annotations)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if problems := checkPod(&pod, p.Sidecar.UID); len(problems) > 0 {
		return admission.Denied("proxychain cannot inject this pod: " + strings.Join(problems, "; "))
	}

	var chain v1alpha1.ProxyChain
	err = p.Reader.Get(ctx, types.NamespacedName{Namespace: req.Namespace, Name: chainName}, &chain)
	switch {
	case apierrors.IsNotFound(err):
		return admission.Denied(fmt.Sprintf("annotation %s: ProxyChain %q not found in namespace %q", AnnotationChain, chainName, req.Namespace))
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("controllers: get ProxyChain %s: %w", chainName, err))
	}
	if msg := notReady(&chain); msg != "" {
		return admission.Denied(fmt.Sprintf("annotation %s: ProxyChain %q is not Ready: %s", AnnotationChain, chainName, msg))
	}

	injected := pod.DeepCopy()
	if err := inject(injected, &chain, opts, p.Sidecar); err != nil {
		return admission.Denied(err.Error())
	}
	if equality.Semantic.DeepEqual(&pod, injected) {
		return admission.Allowed("already injected")
	}
	out, err := json.Marshal(injected)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("controllers: %w", err))
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, out)
	resp.Warnings = dnsWarnings(injected)
	return resp
}

// DNSOpenWarning is the admission warning for a captured pod whose port 53 stays open to
// every address: kubectl shows it to whoever creates the pod.
const DNSOpenWarning = "proxychain: this pod can reach port 53 of any address around the sidecar, " +
	"since its resolvers are unknown (dnsPolicy Default, or a manager without --cluster-dns); see docs/injection.md, DNS"

// dnsWarnings warns when the capture init container was given no resolvers (-dns).
func dnsWarnings(pod *corev1.Pod) []string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == InitName && !slices.Contains(c.Args, "-dns") {
			return []string{DNSOpenWarning}
		}
	}
	return nil
}

// notReady says why a chain cannot serve a new pod, or "" when it can: its ConfigMap
// and credentials Secret exist and hold a good render.
func notReady(pc *v1alpha1.ProxyChain) string {
	c := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return "not reconciled yet"
	case c.Status != "True":
		return c.Reason + ": " + c.Message
	case pc.Status.ConfigHash == "":
		return "no config rendered yet"
	}
	return ""
}
