package localcluster

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// The kubelet reads its file strictly; so does this test, into the kubelet's own type.
func TestKubeletConfigDecodesStrictly(t *testing.T) {
	b, err := kubeletConfig("/d/containerd.sock", "/d/pki/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	var c kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	switch {
	case *c.Authentication.Anonymous.Enabled:
		t.Error("anonymous requests must be refused: A04 judges a locked-down kubelet")
	case c.ReadOnlyPort != 0:
		t.Error("the read-only port must be closed")
	case c.Authorization.Mode != kubeletv1beta1.KubeletAuthorizationModeWebhook:
		t.Error("authorization must ask the API server")
	case c.Address != NodeIP:
		t.Errorf("the kubelet must listen on the cluster's own bridge only, not %q", c.Address)
	}
}

func TestContainerdConfigParses(t *testing.T) {
	b, err := containerdConfig("/d", "127.0.0.1:5000/kwc/pause:1", true)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if _, err := toml.Decode(string(b), &doc); err != nil {
		t.Fatal(err)
	}
	cri := doc["plugins"].(map[string]any)["io.containerd.grpc.v1.cri"].(map[string]any)
	if cri["sandbox_image"] != "127.0.0.1:5000/kwc/pause:1" || cri["restrict_oom_score_adj"] != true {
		t.Fatalf("%s", b)
	}
	rts := cri["containerd"].(map[string]any)["runtimes"].(map[string]any)
	if _, ok := rts[DecoyHandler]; !ok {
		t.Fatalf("the decoy runtime is missing: %s", b)
	}
}

// The whole cluster on this host: a pod runs through the real kubelet, and Down leaves
// no bridge, folder, shim or mount behind.
func TestUpRunsAPodAndDownLeavesNothing(t *testing.T) {
	if m := Prerequisites(); len(m) > 0 {
		t.Fatalf("the local cluster test needs (make deps and make kube-tools provide them):\n  %s", strings.Join(m, "\n  "))
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := Up(t.Context(), Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = c.Down(t.Context())
		}
	})
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: c.Registry.Host() + "/kwc/pause:1"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := cs.CoreV1().Pods("default").Get(t.Context(), "hello", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			if !strings.HasPrefix(p.Status.PodIP, "10.244.0.") {
				t.Fatalf("pod IP %q is not on the cluster's bridge", p.Status.PodIP)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not run: %+v", p.Status)
		}
		time.Sleep(time.Second)
	}
	downed = true
	if err := c.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(Bridge); err == nil {
		t.Error("the bridge is still there")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there", dir)
	}
	if left := killShims(c.ContainerdSocket); len(left) > 0 {
		t.Errorf("shims were left running: %v", left)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), dir) {
		t.Error("mounts under the cluster's folder are left")
	}
}
