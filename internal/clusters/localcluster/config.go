package localcluster

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Addresses of the cluster's own pod network: a bridge the cluster creates and
// removes, so every pod and the node address it advertises live on it.
const (
	Bridge    = "kwc-cni0"
	PodSubnet = "10.244.0.0/24"
	// NodeIP is the bridge's own address: the node address pods see, and where the
	// kubelet listens (never on the host's other interfaces).
	NodeIP   = "10.244.0.1"
	NodeName = "kwc-local"
)

// containerdConfig is containerd 1.6's config (version 2) for a private instance:
// its own root, state and socket, CRI with the bridge CNI, the sandbox image from the
// cluster's registry, and plain HTTP to that registry through hosts.toml.
func containerdConfig(dir, sandboxImage string, decoy bool) ([]byte, error) {
	cfg := map[string]any{
		"version": 2,
		"root":    filepath.Join(dir, "containerd", "root"),
		"state":   filepath.Join(dir, "containerd", "state"),
		"grpc":    map[string]any{"address": filepath.Join(dir, "containerd", "containerd.sock")},
		"ttrpc":   map[string]any{"address": filepath.Join(dir, "containerd", "containerd.sock.ttrpc")},
		"plugins": map[string]any{
			"io.containerd.grpc.v1.cri": map[string]any{
				"sandbox_image": sandboxImage,
				// The kubelet asks for negative oom_score_adj (-998 for the sandbox), which
				// needs CAP_SYS_RESOURCE; hosts whose bounding set lacks it (these
				// development VMs) get containerd's own score as the floor instead.
				"restrict_oom_score_adj": true,
				"cni": map[string]any{
					"bin_dir":  "/usr/lib/cni",
					"conf_dir": filepath.Join(dir, "cni"),
				},
				"registry": map[string]any{"config_path": filepath.Join(dir, "certs.d")},
				"containerd": map[string]any{
					"snapshotter":          "overlayfs",
					"default_runtime_name": "runc",
					"runtimes":             runtimes(dir, decoy),
				},
			},
		},
	}
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
		return nil, fmt.Errorf("encoding containerd's config: %w", err)
	}
	return []byte(b.String()), nil
}

// DecoyHandler is a runtime handler named like Kata that is plain runc: a negative
// control for the suite, whose lanes under it must fail (declared VM-isolated, running
// on the node's kernel).
const DecoyHandler = "kata-decoy"

func runtimes(dir string, decoy bool) map[string]any {
	rts := map[string]any{"runc": map[string]any{"runtime_type": "io.containerd.runc.v2"}}
	if decoy {
		rts[DecoyHandler] = map[string]any{"runtime_type": "io.containerd.runc.v2", "pod_annotations": []string{"io.katacontainers.*"},
			"privileged_without_host_devices": true,
			"options":                         map[string]any{"ConfigPath": filepath.Join(dir, "kata", "configuration-decoy.toml")}}
	}
	return rts
}

// decoyKataConfig is the decoy's Kata configuration, hardened as kwc expects, so the
// configuration checks have a file to read: the decoy must fail on its kernel alone.
const decoyKataConfig = `[hypervisor.qemu]
path = "/opt/kata/bin/qemu-system-x86_64"
enable_annotations = ["enable_iommu"]
shared_fs = "virtio-fs"
virtio_fs_extra_args = ["--thread-pool-size=1", "--announce-submounts"]

[agent.kata]
debug_console_enabled = false
`

// registryHosts is containerd's hosts.toml for the cluster's plain-HTTP registry.
func registryHosts(host string) []byte {
	return []byte(fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host, "http://"+host))
}

// cniConfig is the pod network: one bridge, host-local addresses, no masquerade (no
// pod needs to leave the node), and loopback.
func cniConfig() []byte {
	return []byte(`{
  "cniVersion": "0.4.0",
  "name": "kwc-local",
  "plugins": [
    {"type": "bridge", "bridge": "` + Bridge + `", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "` + PodSubnet + `", "gateway": "` + NodeIP + `"}]]}},
    {"type": "loopback"}
  ]
}
`)
}

// kubeletConfig is the node's kubelet, locked down as a hardened cluster runs it
// (anonymous off, webhook authorization, no read-only port), on cgroup v1 and cgroupfs
// as this host has them.
func kubeletConfig(socket, clientCA string) ([]byte, error) {
	f := false
	t := true
	zero := int32(0)
	c := kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		Address:  NodeIP,
		// The health port stays on loopback.
		HealthzBindAddress: "127.0.0.1",
		ReadOnlyPort:       zero,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: clientCA},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		CgroupDriver:             "cgroupfs",
		FailCgroupV1:             &f,
		FailSwapOn:               &f,
		ContainerRuntimeEndpoint: "unix://" + socket,
		// A shared development host's disk and memory must not evict the test pods.
		EvictionHard:                  map[string]string{"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
		ImageGCHighThresholdPercent:   ptr(int32(100)),
		ImageGCLowThresholdPercent:    ptr(int32(99)),
		ResolverConfig:                ptr("/etc/resolv.conf"),
		ClusterDomain:                 "cluster.local",
		SerializeImagePulls:           &f,
		RegisterNode:                  &t,
		CgroupRoot:                    "/",
		CgroupsPerQOS:                 &t,
		EnforceNodeAllocatable:        []string{"pods"},
		MaxPods:                       30,
		LocalStorageCapacityIsolation: &t,
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding the kubelet's config: %w", err)
	}
	return b, nil
}

func ptr[T any](v T) *T { return &v }
