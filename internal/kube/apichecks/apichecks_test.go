package apichecks

import (
	"testing"

	"kwc.dev/kwc/internal/escape/verdict"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/kubeworkspace"
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

	// The control as the suite runs it, in the same cluster: every check reaches.
	controls, err := Control(ctx, cp.Config(kubeapitest.AdminToken), "leaky")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A01-no-service-account-token", "A02-rbac", "A03-bad-pods-refused"} {
		if controls[id] != verdict.Reached {
			t.Errorf("misconfigured %s: %s, must be reached", id, controls[id])
		}
	}
	// A blocked finding stands only where its control reached.
	safeFindings := Run(ctx, cp.Config(kubeapitest.AdminToken), id, safe.Pod)
	for _, f := range WithControls(safeFindings, controls, nil) {
		if f.Result != verdict.Blocked {
			t.Errorf("%s with its control reached: %s", f.ID, f.Result)
		}
	}
	controls["A02-rbac"] = verdict.Blocked
	for _, f := range WithControls(safeFindings, controls, nil) {
		if f.ID == "A02-rbac" && f.Result != verdict.Error {
			t.Errorf("A02 without its control reached must not pass: %s", f.Result)
		}
	}
}
