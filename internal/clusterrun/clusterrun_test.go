package clusterrun

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/katadeploy"
	"kwc.dev/kwc/internal/kubeapitest"
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
	if len(rcs) != 1 || rcs[0].Name != "kata-clh" || !rcs[0].IsKata() || version != "4.1.0" {
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
