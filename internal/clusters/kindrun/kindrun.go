// Package kindrun brings up and tears down a kind cluster for a run: created through
// kind's library (or a kept one reused), its node checks, the run's images loaded into
// every node with kind's nodeutils, and kind's logs kept when the run failed. What is
// done on the cluster after that (Kata, the node agent) is clusterrun's, shared with
// the cluster target.
package kindrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"kwc.dev/kwc/internal/clusters/kindcluster"
	"kwc.dev/kwc/internal/clusters/preflight"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/clusterrun"
	"kwc.dev/kwc/kindconfigs"
)

// Options say what to bring up.
type Options struct {
	Config *config.Config
	RunID  string
	Dir    string // the run's report folder: kubeconfig and kind logs go here
	// Reuse names a kept cluster to run against instead of creating one.
	Reuse string
	Logf  func(string, ...any)
}

// Env is a run's kind environment: the cluster, and the run on it.
type Env struct {
	*clusterrun.Env
	o       Options
	Cluster *kindcluster.Cluster
	created bool
}

// Up creates (or reuses) the cluster and checks every node.
func Up(ctx context.Context, o Options) (*Env, error) {
	e := &Env{o: o}
	kubeconfig := kindcluster.KubeconfigPath(o.Dir)
	var err error
	if o.Reuse != "" {
		e.Cluster, err = kindcluster.Reuse(o.Reuse, kubeconfig)
	} else {
		cfg, lerr := kindconfigs.Load(o.Config.KindCluster.Config, "kwc-"+o.RunID)
		if lerr != nil {
			return nil, lerr
		}
		if img := o.Config.KindCluster.NodeImage; img != "" {
			for i := range cfg.Nodes {
				cfg.Nodes[i].Image = img
			}
		}
		e.Cluster, err = kindcluster.Create(cfg, kubeconfig, filepath.Join(o.Dir, "artifacts", "kind-create-logs"), o.Config.Interval("kind", "create"), o.Logf)
		e.created = err == nil
	}
	if err != nil {
		return nil, err
	}
	checks, err := e.Cluster.NodeChecks(ctx, o.Config.KindCluster.ShmSize)
	if err == nil {
		err = preflight.Error(checks, "see the README's preflight table")
	}
	if err != nil {
		return e, fmt.Errorf("node checks in %s: %w", e.Cluster.Name, err)
	}
	e.Env, err = clusterrun.New(clusterrun.Options{Config: o.Config, RunID: o.RunID, Kubeconfig: kubeconfig,
		Target: string(config.TargetKind), Image: o.Config.Images.Workspace, Logf: o.Logf})
	return e, err
}

// LoadArchive streams an image archive (docker save format) into every node, as
// `kind load` does: open must return a fresh reader each time.
func (e *Env) LoadArchive(ref string, open func() (io.ReadCloser, error)) error {
	ns, err := e.Cluster.Nodes()
	if err != nil {
		return err
	}
	for _, n := range ns {
		r, err := open()
		if err != nil {
			return err
		}
		err = nodeutils.LoadImageArchive(n, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("loading %s into node %s: %w", ref, n.String(), err)
		}
	}
	e.o.Logf("loaded %s into %d node(s)", ref, len(ns))
	return nil
}

// Down removes the run's objects (the agent's SIGTERM removes its canaries), keeps
// kind's logs when the run failed, and deletes a cluster this run created unless
// asked to keep it.
func (e *Env) Down(ctx context.Context, failed, keep bool) error {
	var errs []error
	// A failure's evidence is gathered before Kata is uninstalled: the uninstall
	// deletes kata-deploy's pod logs and reverts containerd's configuration.
	if failed && e.Cluster != nil {
		triage := filepath.Join(e.o.Dir, "artifacts", "kata-triage")
		e.o.Logf("run failed: collecting Kata triage from every node into %s", triage)
		if err := e.Cluster.CollectKataTriage(ctx, triage); err != nil {
			e.o.Logf("collecting Kata triage (what was read is kept): %v", err)
		}
		dir := filepath.Join(e.o.Dir, "artifacts", "kind-logs")
		if err := e.Cluster.CollectLogs(dir); err != nil {
			e.o.Logf("collecting kind logs: %v", err)
		}
	}
	// Kept means kept as the run left it: workspaces, agent and Kata stay for a look.
	if e.Env != nil && !keep {
		if err := e.Env.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if e.Cluster == nil {
		return errors.Join(errs...)
	}
	if keep || !e.created {
		e.o.Logf("kept kind cluster %s (kubeconfig %s); reuse it with --kwc.reuse=%s", e.Cluster.Name, e.Cluster.Kubeconfig, e.Cluster.Name)
		return errors.Join(errs...)
	}
	if err := e.Cluster.Delete(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
