package kubetarget

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/katadeploy"
)

// A real API server without nodes or a scheduler: what can be shown here is the
// target's side of the contract (runtimes, objects accepted, a stuck workspace
// explained, cleanup); exec needs a kubelet and runs on the kind target only.
func TestTargetAgainstARealAPIServer(t *testing.T) {
	ctx, cp, admin := kubeapitest.ForTest(t)
	tg, err := New(cp.Config(kubeapitest.AdminToken), Options{Name: "cluster", RunID: "kt1", Image: "127.0.0.1/kwc/workspace:dev", ImageStore: "memory", StartTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rc := range katadeploy.RuntimeClassObjects(config.Kata{Version: "4.1.0", Shims: []string{"clh"}}) {
		if err := admin.Resources().Create(ctx, &rc); err != nil {
			t.Fatal(err)
		}
	}
	rts, err := tg.Runtimes(ctx)
	if err != nil || !slices.Equal(rts, []string{"default", "kata-clh"}) {
		t.Fatalf("runtimes %v %v", rts, err)
	}

	lane := config.Lane{Name: "kata-clh-gitlab", Role: config.RoleSubject, Runtime: "kata-clh", Isolation: config.IsolationVM}
	lane.Default()
	_, err = tg.StartWorkspace(ctx, lane)
	if err == nil {
		t.Fatal("with no node, the workspace cannot run")
	}
	for _, want := range []string{"did not run within 6s", "phase Pending", "no scheduler placed it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error must explain the stuck pod (%q): %v", want, err)
		}
	}
	var pod corev1.Pod
	if err := admin.Resources().Get(ctx, "workspace", "kwc-kt1-kata-clh-gitlab", &pod); err != nil {
		t.Fatalf("the pod was created: %v", err)
	}
	if pod.Spec.Overhead.Memory().String() != "130Mi" {
		t.Errorf("RuntimeClass admission set overhead %s", pod.Spec.Overhead.Memory())
	}

	if err := tg.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	var ns corev1.Namespace
	if err := admin.Resources().Get(ctx, "kwc-kt1-kata-clh-gitlab", "", &ns); err == nil && ns.DeletionTimestamp == nil {
		t.Error("cleanup must delete the run's namespaces")
	}
}
