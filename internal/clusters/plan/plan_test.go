package plan

import (
	"bytes"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/clusters/preflight"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/kindconfigs"
)

func TestKindPlan(t *testing.T) {
	_, out := kindPlan(t, func(*config.Config) {}, []preflight.Check{{Name: "/dev/kvm usable", Detail: "missing"}})
	for _, want := range []string{"nothing is created", "kwc-abc123", "kindest/node:v1.37.0@sha256:", "kata-deploy " + config.KataFloor, "k8sDistribution: k8s", "disableAll: true", "amd64: qemu-runtime-rs",
		"kata-dragonball-gitlab", "kata-qemu-runtime-rs-privileged",
		// the shims left out, each with why
		"shims without a lane", "fc ", "devmapper", "qemu-snp ", "SEV-SNP", "remote ", "peer pods",
		"kata-qemu-privileged", "kata-clh-gitlab", "(none: runc)", "sudo,build,run,escape", "FAIL /dev/kvm usable"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
}

// Issue 15: kind without Kata plans the configured runc lanes (and, for the decoy, a
// VM-claiming lane on kata-decoy), installs no chart, and says so.
func TestKindPlanWithoutKata(t *testing.T) {
	for _, tc := range []struct {
		kata       config.KindKata
		want, lack []string
	}{
		{config.KindKataNone, []string{"kindCluster.kata: none", "runc-gitlab", "c3-host-path", "offline node image"}, []string{"kata-deploy 4", "kata-qemu", "kata-decoy"}},
		{config.KindKataDecoy, []string{"kindCluster.kata: decoy", "kata-decoy-gitlab", "kata-decoy-privileged", "runc-privileged"}, []string{"kata-deploy 4", "kata-qemu"}},
	} {
		p, out := kindPlan(t, func(cfg *config.Config) {
			cfg.KindCluster.Kata, cfg.KindCluster.NodeImage, cfg.KindCluster.Config = tc.kata, config.NodeImageOffline, "offline.yaml"
		}, nil)
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the plan lacks %q:\n%s", tc.kata, want, out)
			}
		}
		for _, lack := range tc.lack {
			if strings.Contains(out, lack) {
				t.Errorf("%s: the plan has %q:\n%s", tc.kata, lack, out)
			}
		}
		for _, l := range p.Lanes {
			if l.Runtime == config.DecoyRuntimeClass && l.Isolation != config.IsolationVM {
				t.Errorf("decoy lane %s claims %s isolation, want vm (it must fail for the node's kernel)", l.Name, l.Isolation)
			}
		}
	}
}

// kindPlan is the printed kind plan of the embedded defaults as edit changes them.
func kindPlan(t *testing.T, edit func(*config.Config), checks []preflight.Check) (Plan, string) {
	t.Helper()
	cfg, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	cluster, err := kindconfigs.Load(cfg.KindCluster.Config, "kwc-abc123")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ForKind(cfg, cluster, checks)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Print(&b); err != nil {
		t.Fatal(err)
	}
	return p, b.String()
}
