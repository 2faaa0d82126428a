package katadeploy

import (
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
	v, err := Values(config.Kata{Version: "4.1.0", Shims: []string{"clh", "qemu"}})
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

func TestFlatValuesBefore323(t *testing.T) {
	v, err := Values(config.Kata{Version: "3.20.0", Shims: []string{"clh", "qemu"}, Debug: true})
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
