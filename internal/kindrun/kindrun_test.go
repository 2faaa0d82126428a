package kindrun

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kubeapitest"
	"kwc.dev/kwc/internal/target/kubetarget"
)

func cfg(t *testing.T) *config.Config {
	c, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Up with a node image that cannot be had fails with the cause and leaves nothing.
func TestUpFailsCleanlyWithoutANodeImage(t *testing.T) {
	if out, err := exec.Command("docker", "version").CombinedOutput(); err != nil {
		t.Fatalf("this test needs the container engine (make test starts one): %v %s", err, out)
	}
	c := cfg(t)
	c.KindCluster.NodeImage = "127.0.0.1:9/kwc/absent-node:v1.37.0"
	_, err := Up(context.Background(), Options{Config: c, RunID: "uptest", Dir: t.TempDir(), Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "absent-node") {
		t.Fatalf("want the pull failure, got %v", err)
	}
}

// InstallKata against a real API server with no node: the chart installs, readiness
// never holds, and the timeout names what is still missing.
func TestInstallKataWaitsAndExplains(t *testing.T) {
	ctx, cp, _ := kubeapitest.ForTest(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig, kubeapitest.AdminToken); err != nil {
		t.Fatal(err)
	}
	c := cfg(t)
	chart, _ := filepath.Abs("../katadeploy/testdata/kata-deploy-shape")
	c.Kata.Chart, c.Kata.Shims = chart, []string{"clh"}
	tg, err := kubetarget.New(cp.Config(kubeapitest.AdminToken), kubetarget.Options{Name: "kind", RunID: "ik"})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{o: Options{Config: c, RunID: "ik", Logf: t.Logf, Poll: 200 * time.Millisecond}, Target: tg,
		Cluster: nil}
	e.kubeconfigForTest = kubeconfig
	err = e.InstallKata(ctx, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "was not ready within 2s") || !strings.Contains(err.Error(), "no node to install on") {
		t.Fatalf("want a timeout naming what is missing, got %v", err)
	}
}
