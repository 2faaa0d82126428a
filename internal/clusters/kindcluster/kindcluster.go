// Package kindcluster creates, reuses, inspects and deletes the kind cluster of a run
// through kind's Go library (no kind CLI), loads images into its nodes with kind's
// nodeutils, and checks each node for what Kata needs.
package kindcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"kwc.dev/kwc/internal/clusters/preflight"
)

// Cluster is a run's kind cluster.
type Cluster struct {
	Name       string
	Kubeconfig string
	provider   *cluster.Provider
}

func provider() *cluster.Provider {
	return cluster.NewProvider(cluster.ProviderWithDocker())
}

// Create creates the cluster and waits for its control plane. On failure it keeps
// kind's logs in logDir, deletes what was created, and says where the logs are.
func Create(cfg *v1alpha4.Cluster, kubeconfig, logDir string, wait time.Duration, logf func(string, ...any)) (*Cluster, error) {
	p := provider()
	c := &Cluster{Name: cfg.Name, Kubeconfig: kubeconfig, provider: p}
	logf("creating kind cluster %s (node image %s)", cfg.Name, cfg.Nodes[0].Image)
	start := time.Now()
	err := p.Create(cfg.Name,
		cluster.CreateWithV1Alpha4Config(cfg),
		cluster.CreateWithKubeconfigPath(kubeconfig),
		cluster.CreateWithWaitForReady(wait),
		// Keep failed nodes long enough to collect their logs; Create's caller deletes.
		cluster.CreateWithRetain(true),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false))
	if err != nil {
		msg := fmt.Sprintf("creating kind cluster %s: %v%s", cfg.Name, err, runErrorOutput(err))
		if lerr := p.CollectLogs(cfg.Name, logDir); lerr == nil {
			msg += "\n  kind's logs: " + logDir
		}
		if derr := p.Delete(cfg.Name, kubeconfig); derr != nil {
			msg += fmt.Sprintf("\n  deleting the half-made cluster failed too: %v (run: kwc cleanup --all)", derr)
		}
		return nil, fmt.Errorf("%s", msg)
	}
	logf("kind cluster %s ready in %s", cfg.Name, time.Since(start).Round(time.Second))
	return c, nil
}

// runErrorOutput adds the output of a failed command inside kind's error, which
// kind keeps out of err.Error().
func runErrorOutput(err error) string {
	if re := kindexec.RunErrorForError(err); re != nil && len(re.Output) > 0 {
		out := strings.TrimSpace(string(re.Output))
		if len(out) > 600 {
			out = out[len(out)-600:]
		}
		return "\n  command output: " + out
	}
	return ""
}

// Reuse attaches to a kept cluster (--kwc.reuse) and writes its kubeconfig.
func Reuse(name, kubeconfig string) (*Cluster, error) {
	p := provider()
	names, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("listing kind clusters: %w", err)
	}
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("no kind cluster named %s to reuse (have %v); drop --kwc.reuse to create one", name, names)
	}
	if err := p.ExportKubeConfig(name, kubeconfig, false); err != nil {
		return nil, fmt.Errorf("exporting the kubeconfig of %s: %w", name, err)
	}
	return &Cluster{Name: name, Kubeconfig: kubeconfig, provider: p}, nil
}

// Exists reports whether a kind cluster of that name exists.
func Exists(name string) (bool, error) {
	names, err := provider().List()
	return slices.Contains(names, name), err
}

// Delete deletes the cluster.
func (c *Cluster) Delete() error {
	if err := c.provider.Delete(c.Name, c.Kubeconfig); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", c.Name, err)
	}
	return nil
}

// CollectLogs writes kind's log tree (journal, kubelet, containerd, images) to dir.
func (c *Cluster) CollectLogs(dir string) error { return c.provider.CollectLogs(c.Name, dir) }

// Nodes lists the cluster's nodes.
func (c *Cluster) Nodes() ([]nodes.Node, error) { return c.provider.ListInternalNodes(c.Name) }

// LoadImage streams img, tagged ref, into every node's containerd, as `kind load`
// does, without the CLI or an engine.
func (c *Cluster) LoadImage(img v1.Image, ref string) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("image reference %s: %w", ref, err)
	}
	ns, err := c.Nodes()
	if err != nil {
		return err
	}
	for _, n := range ns {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
		if err := nodeutils.LoadImageArchive(n, pr); err != nil {
			pr.Close()
			return fmt.Errorf("loading %s into node %s: %w", ref, n.String(), err)
		}
	}
	return nil
}

// NodeChecks checks every node for the devices Kata opens, a /dev/shm that fits the
// guests (remounting it to shmSize when it is smaller), and the systemd socket and
// machine-id kata-deploy 4.1's installer uses.
func (c *Cluster) NodeChecks(ctx context.Context, shmSize string) ([]preflight.Check, error) {
	ns, err := c.Nodes()
	if err != nil {
		return nil, err
	}
	var out []preflight.Check
	for _, n := range ns {
		name := n.String()
		for _, dev := range []string{"/dev/kvm", "/dev/vhost-vsock", "/dev/vhost-net"} {
			ch := preflight.Check{Name: name + " " + dev, Fix: "make it present on the host before creating the cluster (a kind node copies the host's devices at start)"}
			if err := n.CommandContext(ctx, "test", "-c", dev).Run(); err != nil {
				ch.Detail = "missing in the node"
			} else {
				ch.OK, ch.Detail = true, "present"
			}
			out = append(out, ch)
		}
		shm := preflight.Check{Name: name + " /dev/shm", Fix: "kwc remounts it; if that fails, give Docker a larger default-shm-size"}
		if err := n.CommandContext(ctx, "mount", "-o", "remount,size="+shmSize, "/dev/shm").Run(); err != nil {
			shm.Detail = "remount to " + shmSize + " failed: " + err.Error()
		} else {
			var b bytes.Buffer
			_ = n.CommandContext(ctx, "df", "-h", "/dev/shm").SetStdout(&b).Run()
			shm.OK, shm.Detail = true, "remounted to "+shmSize+" (the QEMU shims keep guest RAM there)"
		}
		out = append(out, shm)
		for _, f := range []struct{ test, path string }{{"-S", "/run/systemd/private"}, {"-f", "/etc/machine-id"}} {
			ch := preflight.Check{Name: name + " " + f.path, Fix: "use a kind node image with systemd as PID 1"}
			if err := n.CommandContext(ctx, "test", f.test, f.path).Run(); err != nil {
				ch.Detail = "missing (kata-deploy 4.1 reaches systemd through it)"
			} else {
				ch.OK, ch.Detail = true, "present"
			}
			out = append(out, ch)
		}
	}
	return out, nil
}

// KubeconfigPath is where a run keeps its cluster's kubeconfig.
func KubeconfigPath(runDir string) string { return filepath.Join(runDir, "kubeconfig") }

// RemoveRun deletes the kind clusters a run left (kwc-<runID>, or every kwc-* cluster
// when runID is empty): a run killed before its teardown, or one kept with --kwc.keep.
func RemoveRun(runID string) ([]string, error) {
	p := provider()
	names, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("listing kind clusters: %w", err)
	}
	pattern := "kwc-" + runID
	if runID == "" {
		pattern = "kwc-*"
	}
	var removed []string
	var errs []error
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, n); !ok {
			continue
		}
		if err := p.Delete(n, ""); err != nil {
			errs = append(errs, fmt.Errorf("deleting kind cluster %s: %w", n, err))
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}
