package apichecks

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/target"
)

// ControlServiceAccount is the misconfigured identity of the API checks' control.
const ControlServiceAccount = "workspace"

// ControlObjects are a deliberately misconfigured namespace: a ServiceAccount whose
// Role creates pods, execs into them and reads secrets. Every API check must reach
// from there, or its "blocked" elsewhere proves nothing.
func ControlObjects(ns, runID string) (*corev1.Namespace, *corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	labels := map[string]string{target.LabelRun: runID}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ControlServiceAccount, Namespace: ns, Labels: labels}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "too-much", Namespace: ns, Labels: labels},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/exec", "secrets"}, Verbs: []string{"create", "get", "list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "too-much", Namespace: ns, Labels: labels},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "too-much"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: ControlServiceAccount, Namespace: ns}}}
}

// ControlPod is the control's workspace pod: the token left to automount. Control
// creates it as a server-side dry run, so A01 judges what admission made of it.
func ControlPod(ns string) *corev1.Pod {
	yes := true
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: ns},
		Spec: corev1.PodSpec{ServiceAccountName: ControlServiceAccount, AutomountServiceAccountToken: &yes,
			Containers: []corev1.Container{{Name: "workspace", Image: "127.0.0.1/kwc/api-control:none"}}}}
}

// Control runs the API checks against the misconfigured namespace in this cluster and
// run, removes it, and returns each check's result there.
func Control(ctx context.Context, admin *rest.Config, runID string) (map[string]verdict.Result, error) {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	ns := "kwc-" + runID + "-api-control"
	n, sa, role, bind := ControlObjects(ns, runID)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the API checks' control namespace: %w", err)
	}
	// A failed delete is left to the run's namespace sweep: the namespace carries the
	// run's label.
	defer func() { _ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{}) }()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the control's ServiceAccount: %w", err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the control's Role: %w", err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, bind, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the control's RoleBinding: %w", err)
	}
	// The control pod goes through admission as a dry run: the API server returns the
	// pod it would store (the ServiceAccount admission plugin adds the token volume)
	// and nothing is created, so nothing runs.
	admitted, err := cs.CoreV1().Pods(ns).Create(ctx, ControlPod(ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run creating the control's pod: %w", err)
	}
	out := map[string]verdict.Result{}
	for _, f := range Run(ctx, admin, Identity{Namespace: ns, ServiceAccount: ControlServiceAccount}, admitted) {
		out[f.ID] = f.Result
		// A01 reaches in the control only when a token volume was observed on the
		// admitted pod; reaching on the spec's automount alone would prove only that
		// kwc wrote true there.
		if f.ID == "A01-no-service-account-token" && f.Result == verdict.Reached && !strings.Contains(f.Reason, "projected") {
			out[f.ID] = verdict.Error
		}
	}
	return out, nil
}

// controlled are the checks Control proves (the kubelet check has its own).
var controlled = map[string]bool{"A01-no-service-account-token": true, "A02-rbac": true, "A03-bad-pods-refused": true}

// WithControls makes a blocked API finding inconclusive when its control did not
// reach it in this run, as for the probes, and says so either way.
func WithControls(findings []verdict.Finding, controls map[string]verdict.Result, controlErr error) []verdict.Finding {
	out := append([]verdict.Finding(nil), findings...)
	for i := range out {
		f := &out[i]
		if !controlled[f.ID] {
			continue
		}
		got, ok := controls[f.ID]
		switch {
		case controlErr != nil:
			f.Evidence = append(f.Evidence, "control: could not run: "+controlErr.Error())
		case ok:
			f.Evidence = append(f.Evidence, "control: the misconfigured namespace of this run: "+string(got))
		}
		if f.Result == verdict.Blocked && (controlErr != nil || got != verdict.Reached) {
			f.Result, f.Reason = verdict.Error, "blocked, but the check's control did not reach it in this run, so this proves nothing"
		}
	}
	return out
}
