// Package apichecks asks the API server what a workspace's own identity may do: the
// escape paths that need no kernel bug at all (a token, RBAC that creates pods or
// execs into them, nodes/proxy, secrets, admission that accepts a privileged, hostPath
// or hostPID pod, or Kata annotations). Questions are SubjectAccessReviews and
// server-side dry runs: nothing is created.
package apichecks

import (
	"context"
	"fmt"
	"strings"

	"kwc.dev/kwc/internal/escape/verdict"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Identity is the workspace's identity: its ServiceAccount in its namespace.
type Identity struct {
	Namespace, ServiceAccount string
}

func (i Identity) user() string {
	return "system:serviceaccount:" + i.Namespace + ":" + i.ServiceAccount
}

// access is one question for the authorizer.
type access struct {
	verb, group, resource, sub string
	clusterWide                bool
}

var dangerous = []access{
	{"create", "", "pods", "", false},
	{"create", "apps", "deployments", "", false},
	{"create", "apps", "daemonsets", "", false},
	{"create", "apps", "statefulsets", "", false},
	{"create", "apps", "replicasets", "", false},
	{"create", "batch", "jobs", "", false},
	{"create", "batch", "cronjobs", "", false},
	{"create", "", "replicationcontrollers", "", false},
	{"create", "", "pods", "exec", false},
	{"get", "", "pods", "exec", false}, // websocket exec is a GET
	{"create", "", "pods", "attach", false},
	{"get", "", "nodes", "proxy", true},
	{"get", "", "secrets", "", false},
	{"list", "", "secrets", "", false},
	{"create", "", "serviceaccounts", "token", false},
	{"create", "rbac.authorization.k8s.io", "rolebindings", "", false},
	{"escalate", "rbac.authorization.k8s.io", "roles", "", false},
	{"bind", "rbac.authorization.k8s.io", "roles", "", false},
	{"impersonate", "", "users", "", true},
}

// Run asks every question. admin must be allowed to create SubjectAccessReviews and
// to impersonate the workspace identity (the harness's own credentials).
func Run(ctx context.Context, admin *rest.Config, id Identity, pod *corev1.Pod) []verdict.Finding {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return []verdict.Finding{{ID: "A00-api", Result: verdict.Error, Reason: err.Error()}}
	}
	return []verdict.Finding{
		token(pod),
		rbac(ctx, cs, id),
		badPods(ctx, admin, id),
	}
}

func token(pod *corev1.Pod) verdict.Finding {
	f := verdict.Finding{ID: "A01-no-service-account-token", Title: "no service-account token is mounted into the workspace", Techniques: []string{"T24", "P13"}}
	auto := pod.Spec.AutomountServiceAccountToken
	var projected []string
	for _, v := range pod.Spec.Volumes {
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					projected = append(projected, v.Name)
				}
			}
		}
	}
	switch {
	case len(projected) > 0:
		f.Result, f.Reason = verdict.Reached, "a projected service-account token volume: "+strings.Join(projected, ", ")
	case auto == nil || *auto:
		f.Result, f.Reason = verdict.Reached, "automountServiceAccountToken is not false: the workspace gets the namespace identity's token"
	default:
		f.Result, f.Reason = verdict.Blocked, "automountServiceAccountToken: false and no projected token"
	}
	return f
}

func rbac(ctx context.Context, cs kubernetes.Interface, id Identity) verdict.Finding {
	f := verdict.Finding{ID: "A02-rbac", Title: "the workspace identity cannot create workloads, exec, reach nodes/proxy, read secrets or escalate", Techniques: []string{"T25", "T26", "P13"}}
	var allowed []string
	for _, a := range dangerous {
		ns := id.Namespace
		if a.clusterWide {
			ns = ""
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   id.user(),
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + id.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub,
			},
		}}
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		what := a.verb + " " + strings.TrimPrefix(a.group+"/"+a.resource, "/")
		if a.sub != "" {
			what += "/" + a.sub
		}
		if err != nil {
			f.Result, f.Reason = verdict.Error, "SubjectAccessReview "+what+": "+err.Error()
			return f
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: allowed=%v %s", what, got.Status.Allowed, got.Status.Reason))
		if got.Status.Allowed {
			allowed = append(allowed, what)
		}
	}
	if len(allowed) > 0 {
		f.Result, f.Reason = verdict.Reached, id.user()+" may "+strings.Join(allowed, ", ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, fmt.Sprintf("%d questions, none allowed for %s", len(dangerous), id.user())
	return f
}

// BadPods are what an escaping workspace would create, under its own ServiceAccount:
// each is dry-run as the workspace identity and must be refused.
func BadPods(id Identity) map[string]*corev1.Pod {
	yes, no := true, false
	ns := id.Namespace
	mk := func(name string, mut func(*corev1.PodSpec, *metav1.ObjectMeta)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kwc-bad-" + name, Namespace: ns},
			Spec: corev1.PodSpec{ServiceAccountName: id.ServiceAccount, AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "c", Image: "127.0.0.1/kwc/none:0"}}}}
		mut(&p.Spec, &p.ObjectMeta)
		return p
	}
	hostPathType := corev1.HostPathDirectory
	return map[string]*corev1.Pod{
		"privileged": mk("privileged", func(s *corev1.PodSpec, _ *metav1.ObjectMeta) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
		}),
		"hostpath": mk("hostpath", func(s *corev1.PodSpec, _ *metav1.ObjectMeta) {
			s.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &hostPathType}}}}
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
		}),
		"hostpid": mk("hostpid", func(s *corev1.PodSpec, _ *metav1.ObjectMeta) { s.HostPID = true }),
		"kata-annotations": mk("kata-annotations", func(_ *corev1.PodSpec, m *metav1.ObjectMeta) {
			m.Annotations = map[string]string{
				"io.katacontainers.config.hypervisor.kernel_params":        "kwc_canary=1",
				"io.katacontainers.config.hypervisor.virtio_fs_extra_args": `["-o","source=/"]`,
			}
		}),
	}
}

func badPods(ctx context.Context, admin *rest.Config, id Identity) verdict.Finding {
	f := verdict.Finding{ID: "A03-bad-pods-refused", Title: "a privileged, hostPath, hostPID or Kata-annotated pod is refused for the workspace identity", Techniques: []string{"T25", "T35", "T37", "P13"}}
	as := rest.CopyConfig(admin)
	as.Impersonate = rest.ImpersonationConfig{UserName: id.user(), Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + id.Namespace, "system:authenticated"}}
	cs, err := kubernetes.NewForConfig(as)
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	adminCS, err := kubernetes.NewForConfig(admin)
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	var accepted []string
	for _, name := range []string{"privileged", "hostpath", "hostpid", "kata-annotations"} {
		pod := BadPods(id)[name]
		_, err := cs.CoreV1().Pods(id.Namespace).Create(ctx, pod, dryRun)
		switch {
		case err == nil:
			accepted = append(accepted, name)
			f.Evidence = append(f.Evidence, name+": accepted (dry run)")
			continue
		}
		by := RefusedBy(err)
		switch by {
		case RefusalRBAC:
			// RBAC answered before admission could judge the pod: ask admission too
			// (as the harness, still a dry run), so the evidence says whether a second
			// barrier stands behind the first.
			f.Evidence = append(f.Evidence, name+": refused by "+string(by)+": "+firstLine(err.Error())+"; "+behindRBAC(ctx, adminCS, id.Namespace, pod))
		case RefusalAdmission:
			f.Evidence = append(f.Evidence, name+": refused by "+string(by)+": "+firstLine(err.Error()))
		default:
			// A quota refusal goes away when the quota frees up, and an invalid object
			// was never judged at all: neither says the pod is forbidden.
			f.Result, f.Reason = verdict.Error, name+": refused, but by "+string(by)+", which does not show the pod is forbidden: "+firstLine(err.Error())
			return f
		}
	}
	if len(accepted) > 0 {
		f.Result, f.Reason = verdict.Reached, "the API server would create "+strings.Join(accepted, ", ")+" pods for "+id.user()
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "every bad pod is refused for "+id.user()
	return f
}

// behindRBAC says what admission alone does with a pod RBAC refused.
func behindRBAC(ctx context.Context, admin kubernetes.Interface, namespace string, pod *corev1.Pod) string {
	_, err := admin.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return "behind RBAC, admission would admit it: RBAC is the only barrier"
	case RefusedBy(err) == RefusalAdmission:
		return "behind RBAC, admission refuses it too: " + firstLine(err.Error())
	}
	return "behind RBAC, admission could not be asked: " + firstLine(err.Error())
}

// Refusal says who refused a pod: what A03 records, since "refused" alone hides
// whether admission judged the pod or RBAC never let it be asked.
type Refusal string

const (
	RefusalRBAC      Refusal = "rbac"
	RefusalAdmission Refusal = "admission"
	RefusalQuota     Refusal = "quota"
	RefusalInvalid   Refusal = "invalid object"
	RefusalOther     Refusal = "an error"
)

// RefusedBy classifies an API server's refusal of a create.
func RefusedBy(err error) Refusal {
	msg := err.Error()
	switch {
	case apierrors.IsInvalid(err):
		return RefusalInvalid
	case apierrors.IsForbidden(err) && strings.Contains(msg, "exceeded quota"):
		return RefusalQuota
	case apierrors.IsForbidden(err) && strings.Contains(msg, " cannot create resource "):
		return RefusalRBAC
	case apierrors.IsForbidden(err):
		// PodSecurity ("violates PodSecurity"), a ValidatingAdmissionPolicy or a
		// webhook ("admission webhook ... denied the request").
		return RefusalAdmission
	}
	return RefusalOther
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 200 {
		l = l[:200]
	}
	return l
}
