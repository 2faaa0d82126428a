package kindcluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"

	"kwc.dev/kwc/internal/images/nodeimage"
	"kwc.dev/kwc/internal/kube/kataconfig"
)

// The decoy must look to kwc's Kata configuration checks as a kata-deploy shim does in
// the file kind writes: kind's base configuration with the patch merged in.
func TestDecoyPatchIsAKataHandlerInKindsConfig(t *testing.T) {
	dir, err := nodeimage.KindModuleDir()
	if err != nil {
		t.Fatalf("kind's module: %v", err)
	}
	base, err := os.ReadFile(filepath.Join(dir, "images", "base", "files", "etc", "containerd", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	merged := string(base) + "\n" + DecoyContainerdPatch("kata-decoy")
	var doc map[string]any
	if _, err := toml.Decode(merged, &doc); err != nil {
		t.Fatalf("kind's config with the decoy patch is not TOML: %v\n%s", err, merged)
	}
	got := kataconfig.ConfigPaths(map[string][]byte{"/etc/containerd/config.toml": []byte(merged)})
	if !slices.Equal(got, []string{DecoyConfigPath}) {
		t.Fatalf("Kata config paths = %v, want [%s]", got, DecoyConfigPath)
	}
	rt := doc["plugins"].(map[string]any)["io.containerd.grpc.v1.cri"].(map[string]any)["containerd"].(map[string]any)["runtimes"].(map[string]any)["kata-decoy"].(map[string]any)
	if rt["runtime_type"] != "io.containerd.runc.v2" || rt["privileged_without_host_devices"] != true {
		t.Fatalf("the decoy handler is not runc without host devices: %v", rt)
	}
	// kind's nodes run the kubelet with the systemd cgroup driver: a handler on
	// cgroupfs would not start a pod.
	if rt["options"].(map[string]any)["SystemdCgroup"] != true {
		t.Fatalf("the decoy handler does not use systemd cgroups like kind's runc: %v", rt)
	}
	var kata map[string]any
	if _, err := toml.Decode(decoyKataConfig, &kata); err != nil {
		t.Fatalf("the decoy's Kata configuration is not TOML: %v", err)
	}
}
