package clusterrun

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/katadeploy"
	"kwc.dev/kwc/internal/target"
)

func env(t *testing.T, mutate func(*config.Config)) (*Env, *kubeapitest.ControlPlane) {
	t.Helper()
	_, cp, _ := kubeapitest.ForTest(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig, kubeapitest.AdminToken); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(c)
	}
	e, err := New(Options{Config: c, RunID: "ik", Kubeconfig: kubeconfig, Target: "cluster", Logf: t.Logf, Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e, cp
}

// InstallKata against a real API server with no node: the chart installs, readiness
// never holds, and the timeout names what is still missing.
func TestInstallKataWaitsAndExplains(t *testing.T) {
	chart, _ := filepath.Abs("../katadeploy/testdata/kata-deploy-shape")
	e, _ := env(t, func(c *config.Config) { c.Kata.Chart, c.Kata.Shims = chart, []string{"clh"} })
	err := e.InstallKata(t.Context(), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "was not ready within 2s") || !strings.Contains(err.Error(), "no node to install on") {
		t.Fatalf("want a timeout naming what is missing, got %v", err)
	}
	// What the chart created is what lane selection and the version check read.
	rcs, version, err := e.RuntimeClasses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].Name != "kata-clh" || !rcs[0].IsKata() || version != config.KataFloor {
		t.Fatalf("RuntimeClasses %+v, version %q", rcs, version)
	}
}

// The agent never holds on a cluster without nodes: StartAgent says so in time, and
// Down removes the run's namespaces (the namespace controller is absent here, so the
// test only asks that the deletion was accepted).
func TestStartAgentTimesOutNamingWhatIsAwaited(t *testing.T) {
	e, _ := env(t, nil)
	_, err := e.StartAgent(t.Context(), "127.0.0.1/kwc/node-agent:ik", 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "0 of 0 node(s) hold canaries") {
		t.Fatalf("want the wait explained, got %v", err)
	}
	_ = katadeploy.VersionAnnotation
}

// What a run installed it uninstalls, and verifies gone.
func TestUninstallKataVerifiesNothingIsLeft(t *testing.T) {
	chart, _ := filepath.Abs("../katadeploy/testdata/kata-deploy-shape")
	e, _ := env(t, func(c *config.Config) { c.Kata.Chart, c.Kata.Shims = chart, []string{"clh", "qemu"} })
	_ = e.InstallKata(t.Context(), time.Second) // never ready here: no node
	if !e.installed {
		t.Fatal("the install itself succeeded; Down must know to uninstall")
	}
	if err := e.UninstallKata(t.Context(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rcs, _, err := e.RuntimeClasses(t.Context())
	if err != nil || len(rcs) != 0 {
		t.Fatalf("RuntimeClasses left: %v %v", rcs, err)
	}
}

// kwc cleanup's cluster part: only the named run's namespaces go.
func TestRemoveRunDeletesOnlyThatRunsNamespaces(t *testing.T) {
	ctx, cp, admin := kubeapitest.ForTest(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig, kubeapitest.AdminToken); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ name, run string }{{"kwc-aaa-runc-gitlab", "aaa"}, {"kwc-aaa-agent", "aaa"}, {"kwc-bbb-runc-gitlab", "bbb"}} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{target.LabelRun: n.run}}}
		if err := admin.Resources().Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveRun(ctx, kubeconfig, "aaa")
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	var other corev1.Namespace
	if err := admin.Resources().Get(ctx, "kwc-bbb-runc-gitlab", "", &other); err != nil || other.DeletionTimestamp != nil {
		t.Fatalf("another run's namespace was touched: %v %+v", err, other.DeletionTimestamp)
	}
}
