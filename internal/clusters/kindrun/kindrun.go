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
	"maps"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/clusters/kindcluster"
	"kwc.dev/kwc/internal/clusters/preflight"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/clusterrun"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/kindconfigs"
)

// Options say what to bring up.
type Options struct {
	Config *config.Config
	RunID  string
	Dir    string // the run's report folder: kubeconfig and kind logs go here
	// NodeImage is the node image every node gets; "" takes kindCluster.nodeImage,
	// then the kind config's (the offline image must be built and named here).
	NodeImage string
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

// Up creates (or reuses) the cluster, checks every node for what Kata needs when
// Kata is to be installed, and adds the decoy RuntimeClass when asked.
func Up(ctx context.Context, o Options) (*Env, error) {
	e := &Env{o: o}
	kubeconfig := kindcluster.KubeconfigPath(o.Dir)
	kata := o.Config.KindCluster.Kata
	var err error
	if o.Reuse != "" {
		e.Cluster, err = kindcluster.Reuse(o.Reuse, kubeconfig)
	} else {
		cfg, lerr := kindconfigs.Load(o.Config.KindCluster.Config, "kwc-"+o.RunID)
		if lerr != nil {
			return nil, lerr
		}
		img := o.NodeImage
		if img == "" {
			img = o.Config.KindCluster.NodeImage
		}
		if img == config.NodeImageOffline {
			// Never fall back to the config's image: kind would pull it.
			return nil, fmt.Errorf("kindCluster.nodeImage is offline, but no built node image was named (build it with make node-image)")
		}
		if img != "" {
			for i := range cfg.Nodes {
				cfg.Nodes[i].Image = img
			}
		}
		if kata == config.KindKataDecoy {
			kindcluster.AddDecoy(cfg, config.DecoyRuntimeClass)
		}
		e.Cluster, err = kindcluster.Create(cfg, kubeconfig, filepath.Join(o.Dir, "artifacts", "kind-create-logs"), o.Config.Interval("kind", "create"), o.Logf)
		e.created = err == nil
	}
	if err != nil {
		return nil, err
	}
	if kata == config.KindKataInstall {
		checks, err := e.Cluster.NodeChecks(ctx, o.Config.KindCluster.ShmSize)
		if err == nil {
			err = preflight.Error(checks, "see the README's preflight table")
		}
		if err != nil {
			return e, fmt.Errorf("node checks in %s: %w", e.Cluster.Name, err)
		}
	} else {
		o.Logf("kindCluster.kata is %s: no Kata on %s, so its nodes are not checked for KVM", kata, e.Cluster.Name)
	}
	e.Env, err = Connect(o, kubeconfig)
	if err != nil {
		return e, err
	}
	if kata == config.KindKataDecoy {
		if err := e.addDecoy(ctx); err != nil {
			return e, err
		}
	}
	if o.Reuse != "" {
		e.noteEarlierRuns(ctx)
	}
	return e, nil
}

// noteEarlierRuns says which earlier runs' namespaces a reused cluster still holds:
// their kept workspaces keep the node's CPU and memory, and a small node then has no
// room for this run's.
func (e *Env) noteEarlierRuns(ctx context.Context) {
	var nss corev1.NamespaceList
	if err := e.Target.Client().Resources().List(ctx, &nss); err != nil {
		e.o.Logf("listing the reused cluster's namespaces: %v", err)
		return
	}
	runs := map[string]bool{}
	for _, ns := range nss.Items {
		if r := ns.Labels[target.LabelRun]; r != "" && r != e.o.RunID {
			runs[r] = true
		}
	}
	for _, r := range slices.Sorted(maps.Keys(runs)) {
		e.o.Logf("%s still holds run %s's namespaces (kept workspaces use the node's CPU and memory); remove them with: kubectl --kubeconfig %s delete namespace -l %s=%s",
			e.Cluster.Name, r, e.Cluster.Kubeconfig, target.LabelRun, r)
	}
}

// Connect is the run on a cluster another process of the run brought up.
func Connect(o Options, kubeconfig string) (*clusterrun.Env, error) {
	return clusterrun.New(clusterrun.Options{Config: o.Config, RunID: o.RunID, Kubeconfig: kubeconfig,
		Target: string(config.TargetKind), Image: o.Config.Images.Workspace, Logf: o.Logf})
}

// addDecoy gives every node the decoy's Kata configuration and the cluster its
// RuntimeClass; the handler itself came with the cluster (containerdConfigPatches).
// A reused cluster must have been created with the decoy.
func (e *Env) addDecoy(ctx context.Context) error {
	if err := e.Cluster.WriteDecoyConfig(ctx); err != nil {
		return err
	}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: config.DecoyRuntimeClass}, Handler: config.DecoyRuntimeClass}
	err := e.Target.Client().Resources().Create(ctx, rc)
	if apierrors.IsAlreadyExists(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating RuntimeClass %s: %w", config.DecoyRuntimeClass, err)
	}
	e.o.Logf("RuntimeClass %s: runc under a Kata name, with a hardened Kata configuration at %s (the negative control)", config.DecoyRuntimeClass, kindcluster.DecoyConfigPath)
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
