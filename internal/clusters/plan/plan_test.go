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
	cfg, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := kindconfigs.Load(cfg.KindCluster.Config, "kwc-abc123")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ForKind(cfg, cluster, []preflight.Check{{Name: "/dev/kvm usable", Detail: "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
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
