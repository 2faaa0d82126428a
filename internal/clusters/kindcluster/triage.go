package kindcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// TriageStep is one read-only look inside a node after a failed Kata run.
type TriageStep struct {
	// File is where the output goes, under <dir>/<node>/.
	File string
	// Why says what a first failure of this kind usually shows here.
	Why  string
	Args []string
}

// KataTriage is what a first failed Kata-on-kind run needs to be fixed without a
// re-run: kind's maintainers expect VM runtimes in kind nodes to struggle, and the
// reports point at /dev/shm (QEMU), /dev/kvm and vsock. Every step only reads, and
// tolerates what is missing (a node where kata-deploy never ran still answers).
var KataTriage = []TriageStep{
	{File: "kata-deploy.log", Why: "kata-deploy's own pod logs: install aborts (a k8sDistribution mismatch, a shim it refused)",
		Args: []string{"sh", "-c", `for f in /var/log/pods/kube-system_kata-deploy*/*/*.log; do [ -e "$f" ] || { echo "no kata-deploy pod logs on this node"; break; }; echo "== $f"; tail -n 3000 "$f"; done`}},
	{File: "containerd-config.txt", Why: "containerd's configuration as kata-deploy left it: runtime entries, pod_annotations, ConfigPath",
		Args: []string{"sh", "-c", `for f in /etc/containerd/config.toml /etc/containerd/config.d/* /etc/containerd/conf.d/*; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done; true`}},
	{File: "devices.txt", Why: "/dev/kvm, vhost-vsock and vhost-net inside the node, and the size of /dev/shm QEMU maps guest memory from",
		Args: []string{"sh", "-c", `ls -l /dev/kvm /dev/vhost-vsock /dev/vhost-net 2>&1; echo; grep -E ' /dev/shm ' /proc/mounts; df -h /dev/shm 2>&1; true`}},
	{File: "kata-shim.log", Why: "the shim's log (it writes to the journal as kata) and containerd's lines about it: sandbox start errors, hypervisor exits",
		Args: []string{"sh", "-c", `journalctl -t kata --no-pager -o short-precise 2>&1 | tail -n 3000; echo "== containerd"; journalctl -u containerd --no-pager -o short-precise 2>&1 | grep -iE 'kata|shim|qemu|cloud-hypervisor|dragonball|firecracker|virtiofsd' | tail -n 3000; true`}},
	{File: "vmm-cmdline.txt", Why: "the command lines of the VMMs, virtiofsd and the shims still running: memory backend, vsock, shared folders",
		Args: []string{"sh", "-c", `for p in /proc/[0-9]*; do c=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null); case "$c" in *qemu-system*|*cloud-hypervisor*|*firecracker*|*virtiofsd*|*containerd-shim-kata*) echo "${p#/proc/}: $c";; esac; done; true`}},
}

// CollectKataTriage runs KataTriage in every node of the cluster, writing
// <dir>/<node>/<file>. Call it before Kata is uninstalled: uninstalling deletes the
// pod logs and reverts containerd's configuration.
func (c *Cluster) CollectKataTriage(ctx context.Context, dir string) error {
	ns, err := c.Nodes()
	if err != nil {
		return fmt.Errorf("listing the nodes of %s: %w", c.Name, err)
	}
	return collectTriage(ctx, ns, dir)
}

func collectTriage(ctx context.Context, ns []nodes.Node, dir string) error {
	var errs []error
	for _, n := range ns {
		nodeDir := filepath.Join(dir, n.String())
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return fmt.Errorf("triage folder: %w", err)
		}
		for _, s := range KataTriage {
			f, err := os.Create(filepath.Join(nodeDir, s.File))
			if err != nil {
				return fmt.Errorf("triage file: %w", err)
			}
			fmt.Fprintf(f, "# %s\n# %v\n", s.Why, s.Args)
			err = n.CommandContext(ctx, s.Args[0], s.Args[1:]...).SetStdout(f).SetStderr(f).Run()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", s.File, n, err))
			}
		}
	}
	return errors.Join(errs...)
}
