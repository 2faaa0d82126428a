package kindcluster

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// The decoy is the suite's negative control on kind: a containerd runtime handler named
// like Kata that is plain runc, with a hardened Kata configuration file beside it so
// every Kata configuration check has something to read. Lanes on it claim VM
// isolation and run on the node's kernel, so they must fail escape on that alone.
const (
	// DecoyConfigPath is where each node holds the decoy's Kata configuration.
	DecoyConfigPath = "/etc/kata-decoy/configuration.toml"
)

// decoyKataConfig is hardened as kwc expects a real one to be: no annotation that
// reaches the hypervisor beyond a harmless one, virtio-fs, no debug console.
const decoyKataConfig = `[hypervisor.qemu]
path = "/opt/kata/bin/qemu-system-x86_64"
enable_annotations = ["enable_iommu"]
shared_fs = "virtio-fs"
virtio_fs_extra_args = ["--thread-pool-size=1", "--announce-submounts"]

[agent.kata]
debug_console_enabled = false
`

// DecoyContainerdPatch is the containerd configuration (version 2, as kind's base
// writes it) that adds the decoy handler the way kata-deploy adds a shim's: pod
// annotations passed through, privileged without the host's devices, and the shim's
// ConfigPath, which runc ignores.
func DecoyContainerdPatch(handler string) string {
	table := `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.` + handler
	return strings.Join([]string{
		"[" + table + "]",
		`  runtime_type = "io.containerd.runc.v2"`,
		`  base_runtime_spec = "/etc/containerd/cri-base.json"`,
		`  pod_annotations = ["io.katacontainers.*"]`,
		`  privileged_without_host_devices = true`,
		"[" + table + ".options]",
		`  SystemdCgroup = true`,
		`  ConfigPath = "` + DecoyConfigPath + `"`,
		"",
	}, "\n")
}

// AddDecoy adds the decoy handler to a cluster config before it is created: kind
// merges containerdConfigPatches into every node's containerd configuration.
func AddDecoy(cfg *v1alpha4.Cluster, handler string) {
	cfg.ContainerdConfigPatches = append(cfg.ContainerdConfigPatches, DecoyContainerdPatch(handler))
}

// WriteDecoyConfig writes the decoy's Kata configuration into every node.
func (c *Cluster) WriteDecoyConfig(ctx context.Context) error {
	ns, err := c.Nodes()
	if err != nil {
		return err
	}
	for _, n := range ns {
		cmd := n.CommandContext(ctx, "sh", "-c", `mkdir -p "$(dirname "$1")" && cat > "$1"`, "sh", DecoyConfigPath)
		if err := cmd.SetStdin(strings.NewReader(decoyKataConfig)).Run(); err != nil {
			return fmt.Errorf("writing the decoy's Kata configuration into node %s: %w", n.String(), err)
		}
	}
	return nil
}
