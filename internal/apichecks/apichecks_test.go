package apichecks

import (
	"kwc.dev/kwc/internal/verdict"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kubeapitest"
	"kwc.dev/kwc/internal/kubeworkspace"
)

// One control plane, two namespaces: the GitLab-shaped workspace must block every
// check; a misconfigured one (a token, a permissive Role) is each check's control and
// must reach.
func TestAPIChecksAgainstARealAPIServer(t *testing.T) {
	ctx, cp, admin := kubeapitest.ForTest(t)
	lane := config.Lane{Name: "gitlab", Role: config.RoleSubject, Runtime: "default"}
	lane.Default()
	setup := func(run string) kubeworkspace.Objects {
		objs, err := kubeworkspace.Build(kubeworkspace.Options{RunID: run, Lane: lane, Image: "127.0.0.1/kwc/workspace:dev", ImageStore: "disk"})
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Resources().Create(ctx, objs.Namespace); err != nil {
			t.Fatal(err)
		}
		if err := admin.Resources().Create(ctx, objs.ServiceAccount); err != nil {
			t.Fatal(err)
		}
		return objs
	}

	safe := setup("safe")
	id := Identity{Namespace: safe.Namespace.Name, ServiceAccount: kubeworkspace.ServiceAccount}
	for _, f := range Run(ctx, cp.Config(kubeapitest.AdminToken), id, safe.Pod) {
		if f.Result != verdict.Blocked {
			t.Errorf("GitLab-shaped %s: %s (%s)", f.ID, f.Result, f.Reason)
		}
	}

	leaky := setup("leaky")
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "too-much", Namespace: leaky.Namespace.Name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/exec", "secrets"}, Verbs: []string{"create", "get", "list"}}}}
	bind := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "too-much", Namespace: leaky.Namespace.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "too-much"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: kubeworkspace.ServiceAccount, Namespace: leaky.Namespace.Name}}}
	if err := admin.Resources().Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := admin.Resources().Create(ctx, bind); err != nil {
		t.Fatal(err)
	}
	yes := true
	leaky.Pod.Spec.AutomountServiceAccountToken = &yes
	lid := Identity{Namespace: leaky.Namespace.Name, ServiceAccount: kubeworkspace.ServiceAccount}
	for _, f := range Run(ctx, cp.Config(kubeapitest.AdminToken), lid, leaky.Pod) {
		if f.Result != verdict.Reached {
			t.Errorf("misconfigured %s: %s (%s), must be reached", f.ID, f.Result, f.Reason)
		}
	}
}
