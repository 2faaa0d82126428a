package apichecks

import (
	"strings"
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

	// RBAC refuses the bad pods first; the evidence says what admission alone would
	// do: nothing here (no Pod Security level), refuse in a namespace that enforces
	// baseline.
	a03 := func(id Identity) string {
		for _, f := range Run(ctx, cp.Config(kubeapitest.AdminToken), id, safe.Pod) {
			if f.ID == "A03-bad-pods-refused" {
				return strings.Join(f.Evidence, "\n")
			}
		}
		return ""
	}
	if ev := a03(id); !strings.Contains(ev, "privileged: refused by rbac") || !strings.Contains(ev, "RBAC is the only barrier") {
		t.Errorf("A03 evidence without a Pod Security level:\n%s", ev)
	}
	baseline := setup("baseline")
	baseline.Namespace.Labels["pod-security.kubernetes.io/enforce"] = "baseline"
	if err := admin.Resources().Update(ctx, baseline.Namespace); err != nil {
		t.Fatal(err)
	}
	if ev := a03(Identity{Namespace: baseline.Namespace.Name, ServiceAccount: kubeworkspace.ServiceAccount}); !strings.Contains(ev, "admission refuses it too") || !strings.Contains(ev, "PodSecurity") {
		t.Errorf("A03 evidence in a baseline namespace:\n%s", ev)
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
