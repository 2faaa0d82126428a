package katadeploy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	nodev1 "k8s.io/api/node/v1"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
)

func standIn(t *testing.T) config.Kata {
	abs, err := filepath.Abs("testdata/kata-deploy-shape")
	if err != nil {
		t.Fatal(err)
	}
	return config.Kata{Chart: abs, Version: "4.3.0", Shims: []string{"clh", "qemu"}}
}

func TestClientSideRenderCarriesKwcValues(t *testing.T) {
	manifest, err := Install{Kata: standIn(t), ClientOnly: true}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: kata-clh", "name: kata-qemu", "memory: 320Mi", `value: "clh qemu"`, `value: "clh"`} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the rendered chart lacks %q:\n%s", want, manifest)
		}
	}
	if strings.Contains(manifest, "kata-dragonball") {
		t.Error("disableAll must keep unlisted shims out")
	}
}

func TestPinnedVersionMustMatchTheChart(t *testing.T) {
	k := standIn(t)
	k.Version = "4.0.0"
	if _, err := (Install{Kata: k, ClientOnly: true}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "pins 4.0.0") {
		t.Fatalf("want a version mismatch, got %v", err)
	}
}

// The Helm SDK installs into a real kube-apiserver, and what it creates is what Ready
// and the lanes expect: RuntimeClasses whose handler is their name, and the DaemonSet.
func TestInstallIntoARealAPIServer(t *testing.T) {
	ctx, cp, c := kubeapitest.ForTest(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig, kubeapitest.AdminToken); err != nil {
		t.Fatal(err)
	}
	k := standIn(t)
	if _, err := (Install{Kubeconfig: kubeconfig, Kata: k, Timeout: time.Minute}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	var rcs nodev1.RuntimeClassList
	if err := c.Resources().List(ctx, &rcs); err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := c.Resources().Get(ctx, "kata-deploy", "kube-system", &ds); err != nil {
		t.Fatalf("the DaemonSet was not created: %v", err)
	}
	ready, missing := Ready(State{DaemonSet: &ds, RuntimeClasses: rcs.Items}, RuntimeClasses(k), k.Version)
	if ready {
		t.Fatal("no node ran the installer, so the install cannot be ready")
	}
	for _, m := range missing {
		if strings.Contains(m, "RuntimeClass") {
			t.Errorf("the chart's RuntimeClasses do not satisfy Ready: %s", m)
		}
	}
	if left := Gone(State{DaemonSet: &ds, RuntimeClasses: rcs.Items}, RuntimeClasses(k)); len(left) == 0 {
		t.Fatal("Gone must see the install")
	}

	// Uninstall, verified once: nothing of the chart is left.
	if err := Uninstall(ctx, kubeconfig, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	rcs = nodev1.RuntimeClassList{}
	if err := c.Resources().List(ctx, &rcs); err != nil {
		t.Fatal(err)
	}
	st := State{RuntimeClasses: rcs.Items}
	if err := c.Resources().Get(ctx, "kata-deploy", "kube-system", &ds); err == nil {
		st.DaemonSet = &ds
	}
	if left := Gone(st, RuntimeClasses(k)); len(left) > 0 {
		t.Fatalf("left after uninstall: %v", left)
	}
}
