// Package kindrun brings up and tears down everything a kind run needs, in order:
// the cluster (created or reused) and its node checks, the run's images in every node,
// Kata through kata-deploy until its readiness signals hold, and the node agent with
// its canaries. It is plain Go, so the suite and tools share it.
package kindrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/katadeploy"
	"kwc.dev/kwc/internal/kindcluster"
	"kwc.dev/kwc/internal/kubeagent"
	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/preflight"
	"kwc.dev/kwc/internal/target/kubetarget"
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
	// Poll is how often readiness is asked (default 10 s).
	Poll time.Duration
}

// Env is a run's kind environment.
type Env struct {
	o       Options
	Cluster *kindcluster.Cluster
	Target  *kubetarget.Target
	created bool
	// kubeconfigForTest stands in for the cluster's kubeconfig in tests that run
	// against the test API server, where there is no kind cluster.
	kubeconfigForTest string
}

func (e *Env) kubeconfig() string {
	if e.Cluster != nil {
		return e.Cluster.Kubeconfig
	}
	return e.kubeconfigForTest
}

// AgentNamespace is where the node agent runs.
func (e *Env) AgentNamespace() string { return "kwc-" + e.o.RunID + "-agent" }

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
		e.Cluster, err = kindcluster.Create(cfg, kubeconfig, filepath.Join(o.Dir, "artifacts", "kind-create-logs"), 5*time.Minute, o.Logf)
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
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return e, fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	e.Target, err = kubetarget.New(rc, kubetarget.Options{Name: string(config.TargetKind), RunID: o.RunID, Image: o.Config.Images.Workspace,
		ImageStore: o.Config.Kata.ImageStore, ContainerdSocket: "/run/containerd/containerd.sock"})
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

// InstallKata installs kata-deploy and waits for every readiness signal, printing
// what is still missing whenever that changes.
func (e *Env) InstallKata(ctx context.Context, timeout time.Duration) error {
	k := e.o.Config.Kata
	e.o.Logf("installing kata-deploy %s (%s) for %s", k.Version, k.Chart, strings.Join(katadeploy.RuntimeClasses(k), ", "))
	if _, err := (katadeploy.Install{Kubeconfig: e.kubeconfig(), Kata: k, Timeout: timeout}).Run(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		st, err := e.kataState(ctx)
		if err != nil {
			return err
		}
		ready, missing := katadeploy.Ready(st, katadeploy.RuntimeClasses(k), k.Version)
		if ready {
			e.o.Logf("Kata is ready: every node labelled, handlers registered, RuntimeClasses present")
			return nil
		}
		if now := strings.Join(missing, "; "); now != last {
			e.o.Logf("waiting for Kata: %s", now)
			last = now
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kata-deploy %s was not ready within %s: %s", k.Version, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.poll()):
		}
	}
}

func (e *Env) poll() time.Duration {
	if e.o.Poll > 0 {
		return e.o.Poll
	}
	return 10 * time.Second
}

func (e *Env) kataState(ctx context.Context) (katadeploy.State, error) {
	c := e.Target.Client().Resources()
	var st katadeploy.State
	var ds appsv1.DaemonSet
	if err := c.Get(ctx, katadeploy.Release, "kube-system", &ds); err == nil {
		st.DaemonSet = &ds
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return st, fmt.Errorf("listing nodes: %w", err)
	}
	st.Nodes = nodes.Items
	var rcs nodev1.RuntimeClassList
	if err := c.List(ctx, &rcs); err != nil {
		return st, fmt.Errorf("listing RuntimeClasses: %w", err)
	}
	st.RuntimeClasses = rcs.Items
	return st, nil
}

// StartAgent runs the node agent (its image already loaded as image) and returns the
// canaries it holds, read through exec. Single-workspace-node clusters only: with
// several, each lane would need the agent of its own node.
func (e *Env) StartAgent(ctx context.Context, image string) (nodeagent.Canaries, error) {
	c := e.Target.Client().Resources()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.AgentNamespace(), Labels: map[string]string{"dev.kwc.run": e.o.RunID}}}
	if err := c.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating %s: %w", ns.Name, err)
	}
	ds, err := kubeagent.DaemonSet(ns.Name, image, e.o.RunID)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, ds); err != nil {
		return nil, fmt.Errorf("creating the node agent: %w", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, resources.WithLabelSelector("app.kubernetes.io/name=kwc-node-agent")); err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if p.Namespace != ns.Name || p.Status.Phase != corev1.PodRunning {
				continue
			}
			out, err := e.Target.ExecPod(ctx, ns.Name, p.Name, "agent", "/kwc-agent", "show", "--run", e.o.RunID)
			if err != nil {
				break // planting may still be under way
			}
			var held nodeagent.Held
			if err := json.Unmarshal(out, &held); err != nil {
				return nil, fmt.Errorf("reading the node agent's state: %w", err)
			}
			e.o.Logf("node agent on %s holds: %s", p.Spec.NodeName, strings.Join(held.Inventory(), ", "))
			return held, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the node agent did not start within 3 minutes (namespace %s)", ns.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

// Down stops the agent (its SIGTERM removes the canaries), keeps kind's logs when the
// run failed, and deletes a cluster this run created unless asked to keep it.
func (e *Env) Down(ctx context.Context, failed, keep bool) error {
	if e.Target != nil {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.AgentNamespace()}}
		_ = e.Target.Client().Resources().Delete(ctx, ns)
		_ = e.Target.Cleanup(ctx)
	}
	if e.Cluster == nil {
		return nil
	}
	if failed {
		dir := filepath.Join(e.o.Dir, "artifacts", "kind-logs")
		if err := e.Cluster.CollectLogs(dir); err != nil {
			e.o.Logf("collecting kind logs: %v", err)
		}
	}
	if keep || !e.created {
		e.o.Logf("kept kind cluster %s (kubeconfig %s); reuse it with --kwc.reuse=%s", e.Cluster.Name, e.Cluster.Kubeconfig, e.Cluster.Name)
		return nil
	}
	// The agent's grace period lets it remove its canaries before the node goes away.
	time.Sleep(5 * time.Second)
	return e.Cluster.Delete()
}
