package kindconfigs

import (
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestEmbeddedConfigs(t *testing.T) {
	names := Names()
	if len(names) < 2 {
		t.Fatalf("want a single-node and a multi-node config, have %v", names)
	}
	for _, n := range names {
		c, err := Load(n, "kwc-test")
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if c.Name != "kwc-test" || c.Networking.IPFamily == "" {
			t.Errorf("%s: kind's defaults or the cluster name were not applied: %+v", n, c)
		}
	}
	multi, _ := Load("multi-node.yaml", "x")
	workers := 0
	for _, n := range multi.Nodes {
		if n.Role == v1alpha4.WorkerRole {
			workers++
		}
	}
	if workers < 2 {
		t.Errorf("multi-node has %d workers", workers)
	}
}

func TestDecodeRejects(t *testing.T) {
	for body, want := range map[string]string{
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: kindest/node:v1.37.0\n  labels: {kwc.dev/node: workspace}\n":   "not pinned by digest",
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  imag: x\n":                                                            "unknown field",
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n":                                                                                                      "want Cluster kind.x-k8s.io/v1alpha4",
		"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: kindest/node:v1.37.0@sha256:" + strings.Repeat("a", 64) + "\n": "no node labelled",
	} {
		if _, err := Decode([]byte(body), "t", "x"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}
