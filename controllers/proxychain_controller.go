// Package controllers reconciles ProxyChains into the ConfigMap and credentials Secret
// the data plane sidecar mounts, and validates them at admission.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
)

// Labels on the objects the operator writes, so they can be found and told apart.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelChain     = "proxychain.io/chain"
	ManagerName    = "proxychain-operator"
)

// secretIndex indexes ProxyChains by the Secrets they reference.
const secretIndex = ".spec.secretNames"

// Messages of the Ready condition; the Secure condition's come from render.
const (
	MessageRendered = "config.json and credentials are rendered"
	// Event actions (events.k8s.io/v1 requires one).
	actionReconcile = "Reconcile"
	// maxEventNote is the events.k8s.io/v1 limit on an Event's note.
	maxEventNote = 1024
	// maxConditionMessage is the API server's limit on a condition's message, in bytes. The
	// messages are built to stay well under it (render names at most ten missing keys);
	// this is the backstop, since a message over it fails the whole status write.
	maxConditionMessage = 32768
	// conflictRetry is how soon a reconcile whose status write conflicted runs again.
	conflictRetry = time.Second
)

// ProxyChainReconciler renders each ProxyChain into a ConfigMap (config.json, the
// topology) and a Secret (the credentials config.json names as files), both owned by the
// chain, and reports the result in status.
//
// Reads of Secrets and of the owned objects go to the API server directly (APIReader):
// the manager then caches only their metadata, never every Secret's data, and a write
// decision is never made on a stale cache.
type ProxyChainReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
}

// +kubebuilder:rbac:groups=proxychain.io,resources=proxychains,verbs=get;list;watch
// +kubebuilder:rbac:groups=proxychain.io,resources=proxychains/status,verbs=get;update
// +kubebuilder:rbac:groups=proxychain.io,resources=proxychains/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update
// Secrets: get/list/watch for the ones chains reference, create/update for the
// credentials Secrets. RBAC cannot limit create to a name, so the reconciler refuses to
// update any Secret that its ProxyChain does not control.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile renders one ProxyChain.
func (r *ProxyChainReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var pc v1alpha1.ProxyChain
	if err := r.Client.Get(ctx, req.NamespacedName, &pc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !pc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the garbage collector removes what the chain owns
	}

	status := pc.Status.DeepCopy()
	status.ObservedGeneration = pc.Generation
	r.setSecure(status, &pc)

	res, renderErr := r.render(ctx, &pc)
	// An API error, returned after the status write so that controller-runtime retries
	// with backoff: nothing else may change to wake the chain.
	var apiErr error
	switch {
	case renderErr != nil:
		// Keep whatever was written last: running sidecars go on with the last good
		// config, and Ready=False says why it is not the current one.
		reason, userFixable := reasonFor(renderErr)
		r.setReady(status, pc.Generation, metav1.ConditionFalse, reason, renderErr.Error())
		if !userFixable {
			apiErr = renderErr
		}
	default:
		if err := r.write(ctx, &pc, res); err != nil {
			apiErr = err
			r.setReady(status, pc.Generation, metav1.ConditionFalse, v1alpha1.ReasonWriteFailed, err.Error())
		} else {
			r.setReady(status, pc.Generation, metav1.ConditionTrue, v1alpha1.ReasonRendered, MessageRendered)
			setChains(status, &pc, res)
		}
	}

	if err := r.updateStatus(ctx, &pc, status); err != nil {
		if apierrors.IsConflict(err) {
			// The newer version's watch event reconciles again; the requeue is a backstop.
			logger.V(1).Info("status conflict, requeueing", "error", err.Error())
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	if apiErr != nil {
		return ctrl.Result{}, apiErr
	}
	// A user-fixable render error waits for a change: the chain and its Secrets are watched.
	return ctrl.Result{}, nil
}

// render fetches the referenced Secrets and renders the chain.
func (r *ProxyChainReconciler) render(ctx context.Context, pc *v1alpha1.ProxyChain) (*render.Result, error) {
	// The graph first: a broken chain is reported as such even if its Secrets are missing.
	if err := render.CheckChain(&pc.Spec); err != nil {
		return nil, err
	}
	secrets := render.Secrets{}
	for _, name := range render.SecretNames(&pc.Spec) {
		var s corev1.Secret
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: pc.Namespace, Name: name}, &s)
		switch {
		case apierrors.IsNotFound(err):
			continue // render reports it, with every other missing one
		case err != nil:
			return nil, fmt.Errorf("controllers: get secret %s: %w", name, err)
		}
		secrets[name] = s.Data
	}
	return render.Render(&pc.Spec, secrets)
}

// reasonFor is the Ready reason for an error of render, and whether the user must fix
// it: render's typed errors are the spec's or the Secrets' fault, and only a change to
// them can help.
func reasonFor(err error) (reason string, userFixable bool) {
	var (
		notFound *render.SecretNotFoundError
		invalid  *render.InvalidCredentialError
		chainErr *render.ChainError
	)
	switch {
	case errors.As(err, &notFound):
		return v1alpha1.ReasonSecretNotFound, true
	case errors.As(err, &invalid):
		return v1alpha1.ReasonInvalidCredential, true
	case errors.As(err, &chainErr):
		return v1alpha1.ReasonInvalidChain, true
	}
	// An API error reading a Secret (timeout, 429, 503, Forbidden): passing, or an
	// operator's fault, and retried either way.
	return v1alpha1.ReasonReadFailed, false
}

// write stores the credentials Secret, then the ConfigMap, so a stored config never
// names files the Secret does not have yet (a pod can still see the two out of step for
// a moment: see internal/render's package doc). Each is written only when it differs.
func (r *ProxyChainReconciler) write(ctx context.Context, pc *v1alpha1.ProxyChain, res *render.Result) error {
	labels := map[string]string{LabelManagedBy: ManagerName, LabelChain: pc.Name}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: pc.Namespace, Name: render.CredentialsSecretName(pc.Name), Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       res.Credentials,
	}
	if err := r.apply(ctx, pc, "Secret", secret, &corev1.Secret{}, func(have client.Object) bool {
		s := have.(*corev1.Secret)
		return maps.EqualFunc(s.Data, secret.Data, func(a, b []byte) bool { return string(a) == string(b) })
	}); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: pc.Namespace, Name: render.ConfigMapName(pc.Name), Labels: labels},
		Data:       map[string]string{render.ConfigKey: string(res.ConfigJSON)},
	}
	return r.apply(ctx, pc, "ConfigMap", cm, &corev1.ConfigMap{}, func(have client.Object) bool {
		return maps.Equal(have.(*corev1.ConfigMap).Data, cm.Data)
	})
}

// apply creates want, or updates the existing object into want when its data, labels or
// owner differ. It never takes over an object the chain does not control.
func (r *ProxyChainReconciler) apply(ctx context.Context, pc *v1alpha1.ProxyChain, kind string, want, have client.Object, sameData func(client.Object) bool) error {
	if err := controllerutil.SetControllerReference(pc, want, r.Client.Scheme()); err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("controllers: create %s %s: %w", kind, want.GetName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("controllers: get %s %s: %w", kind, want.GetName(), err)
	}
	if !metav1.IsControlledBy(have, pc) {
		return fmt.Errorf("controllers: %s %s exists and is not controlled by ProxyChain %s", kind, want.GetName(), pc.Name)
	}
	if sameData(have) && hasLabels(have, want.GetLabels()) {
		return nil
	}
	want.SetResourceVersion(have.GetResourceVersion())
	want.SetLabels(mergeLabels(have.GetLabels(), want.GetLabels()))
	want.SetAnnotations(have.GetAnnotations())
	if err := r.Client.Update(ctx, want); err != nil {
		return fmt.Errorf("controllers: update %s %s: %w", kind, want.GetName(), err)
	}
	return nil
}

func hasLabels(o client.Object, want map[string]string) bool {
	have := o.GetLabels()
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func mergeLabels(have, want map[string]string) map[string]string {
	merged := maps.Clone(have)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, want)
	return merged
}

func (r *ProxyChainReconciler) setSecure(status *v1alpha1.ProxyChainStatus, pc *v1alpha1.ProxyChain) {
	if hops := render.InsecureHops(&pc.Spec); len(hops) > 0 {
		r.setCondition(status, v1alpha1.ConditionSecure, pc.Generation, metav1.ConditionFalse,
			v1alpha1.ReasonInsecureHops, render.DescribeInsecure(hops))
		return
	}
	r.setCondition(status, v1alpha1.ConditionSecure, pc.Generation, metav1.ConditionTrue,
		v1alpha1.ReasonAllHopsAEAD, render.MessageAllHopsAEAD)
}

func (r *ProxyChainReconciler) setReady(status *v1alpha1.ProxyChainStatus, generation int64, s metav1.ConditionStatus, reason, message string) {
	r.setCondition(status, v1alpha1.ConditionReady, generation, s, reason, message)
}

func (r *ProxyChainReconciler) setCondition(status *v1alpha1.ProxyChainStatus, typ string, generation int64, s metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               typ,
		Status:             s,
		Reason:             reason,
		Message:            truncate(message, maxConditionMessage),
		ObservedGeneration: generation,
		// Used only when the status changes; SetStatusCondition keeps the old time otherwise.
		LastTransitionTime: metav1.NewTime(r.Clock.Now()),
	})
}

// truncate cuts s to at most n bytes, marking the cut with "...". It cuts between runes:
// a split one is invalid UTF-8, which JSON encodes as a longer U+FFFD.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func setChains(status *v1alpha1.ProxyChainStatus, pc *v1alpha1.ProxyChain, res *render.Result) {
	status.ConfigHash = res.Hash
	status.Outbounds = status.Outbounds[:0]
	def := pc.Spec.DefaultOutbound
	if def == "" && len(res.Chains) > 0 {
		def = res.Chains[0].Tag // the first outbound, as in V2Ray
	}
	for _, c := range res.Chains {
		status.Outbounds = append(status.Outbounds, v1alpha1.OutboundStatus{
			Tag: c.Tag, Path: c.String(), Hops: int32(len(c.Path)),
		})
		if c.Tag == def {
			status.Entry = c.Path[0]
			status.Exit = c.Tag
			status.Hops = int32(len(c.Path))
		}
	}
}

// updateStatus writes status when it changed, then records an Event for each condition
// that changed its status or reason.
func (r *ProxyChainReconciler) updateStatus(ctx context.Context, pc *v1alpha1.ProxyChain, status *v1alpha1.ProxyChainStatus) error {
	if equality.Semantic.DeepEqual(&pc.Status, status) {
		return nil
	}
	before := pc.Status.DeepCopy()
	pc.Status = *status
	if err := r.Client.Status().Update(ctx, pc); err != nil {
		return err
	}
	for _, c := range status.Conditions {
		old := meta.FindStatusCondition(before.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		eventType := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		note := truncate(fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Message), maxEventNote)
		r.Recorder.Eventf(pc, nil, eventType, c.Reason, actionReconcile, "%s", note)
	}
	return nil
}

// SetupWithManager registers the reconciler and the index it needs.
func (r *ProxyChainReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ProxyChain{}, secretIndex,
		func(o client.Object) []string { return render.SecretNames(&o.(*v1alpha1.ProxyChain).Spec) }); err != nil {
		return fmt.Errorf("controllers: index secrets: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ProxyChain{}).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.chainsReferencing), builder.OnlyMetadata).
		Named("proxychain").
		Complete(r)
}

// chainsReferencing maps a Secret to the ProxyChains in its namespace that reference it.
func (r *ProxyChainReconciler) chainsReferencing(ctx context.Context, secret client.Object) []reconcile.Request {
	var chains v1alpha1.ProxyChainList
	if err := r.Client.List(ctx, &chains, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{secretIndex: secret.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list proxychains referencing secret", "secret", secret.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(chains.Items))
	for _, pc := range chains.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pc)})
	}
	return slices.Clip(reqs)
}
