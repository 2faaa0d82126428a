package katadeploy

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kwc.dev/kwc/internal/config"
)

func TestStructuredValues(t *testing.T) {
	v, err := Values(config.Kata{Version: "4.3.0", Shims: []string{"clh", "qemu"}}, "k8s")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := yaml.Marshal(v)
	got := string(b)
	for _, want := range []string{"disableAll: true", "clh:\n    enabled: true", "amd64: clh", "setup: []", "debug: false"} {
		if !strings.Contains(got, want) {
			t.Errorf("values lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "env:") {
		t.Error("4.x charts take structured values, not env")
	}
}

// kata-deploy aborts on a k8sDistribution that does not match the cluster, so kwc
// reads it from the nodes, refuses nodes that disagree, and picks the chart's own
// defaultShim when the run installs it.
func TestDistributionAndDefaultShim(t *testing.T) {
	node := func(name, kubelet string, labels map[string]string) corev1.Node {
		n := corev1.Node{}
		n.Name, n.Labels, n.Status.NodeInfo.KubeletVersion = name, labels, kubelet
		return n
	}
	for want, nodes := range map[string][]corev1.Node{
		"k8s":      {node("kind-control-plane", "v1.37.0", nil)},
		"k3s":      {node("a", "v1.33.1+k3s1", nil), node("b", "v1.33.1+k3s1", nil)},
		"rke2":     {node("a", "v1.33.1+rke2r1", nil)},
		"k0s":      {node("a", "v1.33.1+k0s", nil)},
		"microk8s": {node("a", "v1.33.1", map[string]string{"microk8s.io/cluster": "true"})},
	} {
		if got, err := Distribution(nodes); err != nil || got != want {
			t.Errorf("%s: got %q, %v", want, got, err)
		}
	}
	if _, err := Distribution([]corev1.Node{node("a", "v1.33.1+k3s1", nil), node("b", "v1.33.1", nil)}); err == nil || !strings.Contains(err.Error(), "different") {
		t.Errorf("mixed nodes: %v", err)
	}
	if d, err := Distribution(nil); err != nil || d != "k8s" {
		t.Errorf("no nodes yet: %q, %v; want k8s (readiness waits for the nodes)", d, err)
	}
	v, err := Values(config.Kata{Version: "4.3.0", Shims: []string{"clh", "qemu-runtime-rs"}}, "k3s")
	if err != nil {
		t.Fatal(err)
	}
	if v["k8sDistribution"] != "k3s" || v["defaultShim"].(map[string]any)["amd64"] != "qemu-runtime-rs" {
		t.Fatalf("%v", v)
	}
	v, _ = Values(config.Kata{Version: "4.3.0", Shims: []string{"clh"}}, "")
	if v["defaultShim"].(map[string]any)["amd64"] != "clh" || v["k8sDistribution"] != "k8s" {
		t.Fatalf("without qemu-runtime-rs the default is the first shim the run enables: %v", v)
	}
	if _, err := Values(config.Kata{Version: "4.3.0", Shims: []string{"clh"}}, "openshift"); err == nil {
		t.Error("an unknown distribution must be refused before the chart aborts")
	}
}

func TestFlatValuesBefore323(t *testing.T) {
	v, err := Values(config.Kata{Version: "3.20.0", Shims: []string{"clh", "qemu"}, Debug: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	env := v["env"].(map[string]any)
	if env["shims"] != "clh qemu" || env["debug"] != "true" || v["shims"] != nil {
		t.Fatalf("%v", v)
	}
}

func TestRuntimeClassesAndOverhead(t *testing.T) {
	got := RuntimeClasses(config.Kata{Shims: []string{"qemu"}, Debug: true})
	if strings.Join(got, ",") != "kata-qemu,kata-qemu-debug" {
		t.Fatal(got)
	}
	if m, _ := Overhead("qemu-runtime-rs"); m != "320Mi" {
		t.Fatal(m)
	}
	if m, _ := Overhead("dragonball"); m != "130Mi" {
		t.Fatal(m)
	}
}

func readyState() State {
	ds := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, NumberReady: 1}}
	node := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"katacontainers.io/kata-runtime": "true", "kata-deploy.katacontainers.io/default": "true"}},
		Status: corev1.NodeStatus{
			RuntimeHandlers: []corev1.NodeRuntimeHandler{{Name: "kata-clh"}, {Name: "runc"}},
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			NodeInfo:        corev1.NodeSystemInfo{ContainerRuntimeVersion: "containerd://2.3.1"},
		}}
	return State{DaemonSet: ds, Nodes: []corev1.Node{node}, RuntimeClasses: []nodev1.RuntimeClass{{ObjectMeta: metav1.ObjectMeta{Name: "kata-clh"}, Handler: "kata-clh"}}}
}

func TestReady(t *testing.T) {
	if ok, missing := Ready(readyState(), []string{"kata-clh"}, "4.1.0"); !ok {
		t.Fatalf("every signal is there: %v", missing)
	}
	for name, breakIt := range map[string]func(*State){
		"ready 0/1":                        func(s *State) { s.DaemonSet.Status.NumberReady = 0 },
		"kata-runtime":                     func(s *State) { s.Nodes[0].Labels["katacontainers.io/kata-runtime"] = "false" },
		"no runtime handler":               func(s *State) { s.Nodes[0].Status.RuntimeHandlers = nil },
		"not Ready":                        func(s *State) { s.Nodes[0].Status.Conditions[0].Status = corev1.ConditionFalse },
		"containerd://Unknown":             func(s *State) { s.Nodes[0].Status.NodeInfo.ContainerRuntimeVersion = "containerd://Unknown" },
		"RuntimeClass kata-clh is missing": func(s *State) { s.RuntimeClasses = nil },
		"does not exist yet":               func(s *State) { s.DaemonSet = nil },
	} {
		s := readyState()
		breakIt(&s)
		ok, missing := Ready(s, []string{"kata-clh"}, "4.1.0")
		if ok || !strings.Contains(strings.Join(missing, "\n"), name) {
			t.Errorf("%s: ready=%v missing=%v", name, ok, missing)
		}
	}
	s := readyState()
	delete(s.Nodes[0].Labels, "kata-deploy.katacontainers.io/default")
	if ok, _ := Ready(s, []string{"kata-clh"}, "4.0.0"); !ok {
		t.Error("before 4.1 there is no instance label to wait for")
	}
}

// Every value kwc sets is one the chart declares (the stand-in copies kata-deploy
// 4.3.0's names): Helm ignores an unknown key silently, so a renamed value would
// otherwise install defaults kwc never meant.
func TestValuesUseTheChartsNames(t *testing.T) {
	b, err := os.ReadFile("testdata/kata-deploy-shape/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var chart map[string]any
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	v, err := Values(config.Kata{Version: "4.3.0", Shims: []string{"qemu-runtime-rs"}}, "k8s")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, ours, theirs map[string]any)
	walk = func(prefix string, ours, theirs map[string]any) {
		for k, val := range ours {
			tv, ok := theirs[k]
			if !ok {
				if prefix == "shims." {
					continue // shim names come from the shim table, checked there
				}
				t.Errorf("kwc sets %s%s, which the chart does not declare", prefix, k)
				continue
			}
			if om, ok := val.(map[string]any); ok {
				if tm, ok := tv.(map[string]any); ok {
					walk(prefix+k+".", om, tm)
				}
			}
		}
	}
	walk("", v, chart)
}
