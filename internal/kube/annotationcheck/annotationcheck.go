// Package annotationcheck is the live test of Kata's annotation hardening: an
// admin-created pod under a Kata RuntimeClass sets a benign kernel_params canary, and
// the guest's /proc/cmdline shows whether it reached the guest's boot. Judged against
// what the node's configuration says: when kernel_params is not allowed, the canary
// must be absent; when it is, its presence proves the path (K03 says why).
package annotationcheck

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/target"
)

// Annotation is the hypervisor annotation the check sets.
const Annotation = "io.katacontainers.config.hypervisor.kernel_params"

// Canary is the kernel parameter: unknown to the kernel, so it changes nothing but
// the command line.
func Canary(runID string) string { return "kwc_canary=" + runID }

// Pod is the admin-created pod: the workspace image, doing nothing, no token, under
// the runtime class, with the canary annotation.
func Pod(ns, runtimeClass, image, runID string) *corev1.Pod {
	no := false
	rc := runtimeClass
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kernel-params-canary", Namespace: ns,
			Labels:      map[string]string{target.LabelRun: runID},
			Annotations: map[string]string{Annotation: Canary(runID)}},
		Spec: corev1.PodSpec{
			RuntimeClassName:              &rc,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "guest", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "infinity"}}},
		},
	}
}

// Outcome is what the live pod showed.
type Outcome struct {
	// Cmdline is the guest's /proc/cmdline; empty when the pod never ran.
	Cmdline string
	// StartError is why the pod did not run (Kata refuses a sandbox whose annotations
	// are not enabled); empty when it ran.
	StartError string
}

// Judge decides the check. allowed is what the node's configuration says
// (kataconfig.AnnotationAllowed), with its evidence.
func Judge(runID string, allowed bool, why []string, o Outcome) verdict.Finding {
	f := verdict.Finding{ID: "K06-kernel-params-annotation", Title: "a kernel_params annotation does not reach the guest's boot",
		Techniques: []string{"T35", "T37", "P15"}, Evidence: append([]string(nil), why...)}
	canary := Canary(runID)
	switch {
	case o.StartError != "":
		f.Evidence = append(f.Evidence, "the annotated pod did not run: "+o.StartError)
		// Only a refusal that names the annotation is the runtime enforcing it; any
		// other failure (an image, a node) proves nothing.
		if allowed || !strings.Contains(o.StartError, "annotation") {
			f.Result, f.Reason = verdict.Error, "the annotated pod did not run, for a reason that is not the annotation: "+o.StartError
			return f
		}
		f.Result, f.Reason = verdict.Blocked, "the runtime refused the annotated pod"
		return f
	case o.Cmdline == "":
		f.Result, f.Reason = verdict.Error, "no guest command line was read"
		return f
	}
	present := false
	for _, arg := range strings.Fields(o.Cmdline) {
		if arg == canary {
			present = true
		}
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("guest /proc/cmdline %s %s", map[bool]string{true: "has", false: "lacks"}[present], canary))
	switch {
	case present && !allowed:
		f.Result, f.Reason = verdict.Reached, "the canary reached the guest's kernel command line although the configuration does not allow kernel_params: enforcement is broken"
	case present:
		f.Result, f.Reason = verdict.Reached, "a pod author sets the guest's kernel parameters: kernel_params is allowed"
	case allowed:
		f.Result, f.Reason = verdict.Error, "the configuration allows kernel_params but the canary is not on the guest's command line: this check cannot see the path"
	default:
		f.Result, f.Reason = verdict.Blocked, "the annotation was dropped: the guest booted without the canary"
	}
	return f
}
