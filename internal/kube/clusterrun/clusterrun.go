// Package clusterrun is what a run does on any Kubernetes cluster once it has a
// kubeconfig, kind's or the user's: connect the target, install Kata through
// kata-deploy when asked and wait for every readiness signal, run the node agent on
// every node and talk to it, and remove the run's objects at the end.
package clusterrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/kube/kataconfig"
	"kwc.dev/kwc/internal/kube/katadeploy"
	"kwc.dev/kwc/internal/kube/kubeagent"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/target/kubetarget"
)

// Options say which cluster and run.
type Options struct {
	Config     *config.Config
	RunID      string
	Kubeconfig string
	// Target names the target in the report: kind or cluster.
	Target string
	// Image is the workspace image as the nodes pull it.
	Image string
	Logf  func(string, ...any)
	// Poll is how often readiness is asked (default 10 s).
	Poll time.Duration
}

// Env is a run on one cluster.
type Env struct {
	o      Options
	Target *kubetarget.Target
	// installed is set once this run installed Kata: Down uninstalls it and verifies.
	installed bool
	// Distribution is the k8sDistribution kata-deploy was installed with, read from
	// the nodes (the report's environment records it).
	Distribution string
}

// New connects to the cluster behind the kubeconfig.
func New(o Options) (*Env, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig %s: %w", o.Kubeconfig, err)
	}
	t, err := kubetarget.New(rc, kubetarget.Options{Name: o.Target, RunID: o.RunID, Image: o.Image,
		ImageStore: o.Config.Kata.ImageStore, ContainerdSocket: o.Config.Cluster.ContainerdSocket,
		StartTimeout: o.Config.Interval("default", "workspace-start")})
	if err != nil {
		return nil, err
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &Env{o: o, Target: t}, nil
}

// AgentNamespace is where the node agent runs.
func (e *Env) AgentNamespace() string { return "kwc-" + e.o.RunID + "-agent" }

// KubernetesDistribution reads the k8sDistribution kata-deploy must be given from the
// cluster's nodes (a wrong one aborts the chart's install).
func (e *Env) KubernetesDistribution(ctx context.Context) (string, error) {
	var nodes corev1.NodeList
	if err := e.Target.Client().Resources().List(ctx, &nodes); err != nil {
		return "", fmt.Errorf("listing nodes for kata-deploy's k8sDistribution: %w", err)
	}
	return katadeploy.Distribution(nodes.Items)
}

// InstallKata installs kata-deploy and waits for every readiness signal, printing
// what is still missing whenever that changes.
func (e *Env) InstallKata(ctx context.Context, timeout time.Duration) error {
	k := e.o.Config.Kata
	dist, err := e.KubernetesDistribution(ctx)
	if err != nil {
		return err
	}
	e.Distribution = dist
	e.o.Logf("installing kata-deploy %s (%s, k8sDistribution %s) for %s", k.Version, k.Chart, dist, strings.Join(katadeploy.RuntimeClasses(k), ", "))
	if _, err := (katadeploy.Install{Kubeconfig: e.o.Kubeconfig, Kata: k, Distribution: dist, Timeout: timeout}).Run(ctx); err != nil {
		return err
	}
	e.installed = true
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

// RuntimeClasses lists the cluster's RuntimeClasses for lane selection, and the Kata
// version kata-deploy annotates on them (empty when none says).
func (e *Env) RuntimeClasses(ctx context.Context) ([]config.RuntimeClass, string, error) {
	var rcs nodev1.RuntimeClassList
	if err := e.Target.Client().Resources().List(ctx, &rcs); err != nil {
		return nil, "", fmt.Errorf("listing RuntimeClasses: %w", err)
	}
	var out []config.RuntimeClass
	version := ""
	for _, rc := range rcs.Items {
		out = append(out, config.RuntimeClass{Name: rc.Name, Handler: rc.Handler})
		if v := rc.Annotations[katadeploy.VersionAnnotation]; v != "" {
			version = v
		}
	}
	slices.SortFunc(out, func(a, b config.RuntimeClass) int { return strings.Compare(a.Name, b.Name) })
	return out, version, nil
}

// Agent is the node agent on one node: its canaries, and exec into its pod for the
// node's state, configuration and the probe reference.
type Agent struct {
	nodeagent.Held
	Node string
	pod  target.Workspace
	cfg  *config.Config
}

// Workspace is the agent's pod as a place to run commands (the probe reference).
func (a *Agent) Workspace() target.Workspace { return a.pod }

func (a *Agent) exec(ctx context.Context, args ...string) ([]byte, error) {
	r, err := a.pod.Exec(ctx, target.ExecRequest{Cmd: append([]string{"/kwc-agent"}, args...), Timeout: a.cfg.Interval("cluster", "agent-exec")})
	if err != nil {
		return nil, err
	}
	if !r.OK() {
		return nil, fmt.Errorf("kwc-agent %s on %s: exit %d: %s", args[0], a.Node, r.ExitCode, r.Stderr)
	}
	return []byte(r.Stdout), nil
}

// Snapshot is the node's state now, read by the agent on the node.
func (a *Agent) Snapshot(ctx context.Context) (nodeagent.Snapshot, error) {
	b, err := a.exec(ctx, "snapshot")
	if err != nil {
		return nil, err
	}
	var s nodeagent.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading the snapshot of %s: %w", a.Node, err)
	}
	return s, nil
}

// Alive confirms the run's canaries on the node, from the agent's pod, and reads the
// node's kernel facts afresh.
func (a *Agent) Alive(ctx context.Context) (nodeagent.Liveness, error) {
	b, err := a.exec(ctx, "alive", "--run", a.Spec().RunID)
	if err != nil {
		return nodeagent.Liveness{}, err
	}
	var l nodeagent.Liveness
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("reading the canaries' liveness on %s: %w", a.Node, err)
	}
	return l, nil
}

// NodeConfig is the node's containerd and Kata configuration and Kata's host-side
// processes.
func (a *Agent) NodeConfig(ctx context.Context) (kataconfig.Node, error) {
	b, err := a.exec(ctx, "node-config", "--containerd-config", a.cfg.Cluster.ContainerdConfig)
	if err != nil {
		return kataconfig.Node{}, err
	}
	var n kataconfig.Node
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("reading the configuration of %s: %w", a.Node, err)
	}
	return n, nil
}

// Agents are the node agents by node name.
type Agents map[string]*Agent

// StartAgent runs the node agent (image, already where the nodes pull from) on every
// node and returns each node's agent once all of them hold their canaries.
func (e *Env) StartAgent(ctx context.Context, image string, timeout time.Duration) (Agents, error) {
	c := e.Target.Client().Resources()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.AgentNamespace(), Labels: map[string]string{target.LabelRun: e.o.RunID}}}
	if err := c.Create(ctx, ns); err != nil {
		return nil, fmt.Errorf("creating %s: %w", ns.Name, err)
	}
	ds, err := kubeagent.DaemonSet(kubeagent.Agent{Namespace: ns.Name, Image: image, RunID: e.o.RunID, ContainerdSocket: e.o.Config.Cluster.ContainerdSocket,
		ProbeTimeout: e.o.Config.Probes.Timeout.Duration})
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, ds); err != nil {
		return nil, fmt.Errorf("creating the node agent: %w", err)
	}
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		agents, waiting, err := e.agents(ctx, ns.Name, ds.Name)
		if err != nil {
			return nil, err
		}
		if waiting == "" {
			for _, a := range agents {
				e.o.Logf("node agent on %s holds: %s", a.Node, strings.Join(a.Inventory(), ", "))
			}
			return agents, nil
		}
		if waiting != last {
			e.o.Logf("waiting for the node agent: %s", waiting)
			last = waiting
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the node agent did not hold its canaries on every node within %s (namespace %s): %s", timeout, ns.Name, waiting)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

// agents reads every agent that holds its canaries, and says what is still awaited.
// RunningAgents finds the node agents StartAgent started for this run (another
// process of the run started them); it fails unless every node's agent holds its
// canaries.
func (e *Env) RunningAgents(ctx context.Context) (Agents, error) {
	ds, err := kubeagent.DaemonSet(kubeagent.Agent{Namespace: e.AgentNamespace(), RunID: e.o.RunID})
	if err != nil {
		return nil, err
	}
	agents, waiting, err := e.agents(ctx, e.AgentNamespace(), ds.Name)
	if err != nil {
		return nil, err
	}
	if waiting != "" {
		return nil, fmt.Errorf("the node agent is not ready on every node: %s", waiting)
	}
	return agents, nil
}

func (e *Env) agents(ctx context.Context, ns, name string) (Agents, string, error) {
	c := e.Target.Client().Resources()
	var ds appsv1.DaemonSet
	if err := c.Get(ctx, name, ns, &ds); err != nil {
		return nil, "", fmt.Errorf("reading the node agent DaemonSet: %w", err)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, resources.WithLabelSelector("app.kubernetes.io/name=kwc-node-agent,"+target.LabelRun+"="+e.o.RunID)); err != nil {
		return nil, "", err
	}
	agents := Agents{}
	var waiting []string
	for _, p := range pods.Items {
		if p.Namespace != ns {
			continue
		}
		if p.Status.Phase != corev1.PodRunning {
			waiting = append(waiting, fmt.Sprintf("%s on %s is %s", p.Name, p.Spec.NodeName, p.Status.Phase))
			continue
		}
		pod := e.Target.Pod(ns, p.Name, "agent", p.Spec.NodeName)
		r, err := pod.Exec(ctx, target.ExecRequest{Cmd: []string{"/kwc-agent", "show", "--run", e.o.RunID}, Timeout: e.o.Config.Interval("cluster", "agent-exec")})
		if err != nil || !r.OK() {
			waiting = append(waiting, fmt.Sprintf("%s on %s is planting", p.Name, p.Spec.NodeName))
			continue
		}
		var held nodeagent.Held
		if err := json.Unmarshal([]byte(r.Stdout), &held); err != nil {
			return nil, "", fmt.Errorf("reading the node agent's state on %s: %w", p.Spec.NodeName, err)
		}
		// The probes' discovery bounds are the harness's configuration, not the agent's.
		held.S.Discovery = e.o.Config.Probes.Discovery.Bounds()
		agents[p.Spec.NodeName] = &Agent{Held: held, Node: p.Spec.NodeName, pod: pod, cfg: e.o.Config}
	}
	if want := int(ds.Status.DesiredNumberScheduled); want == 0 || len(agents) < want {
		waiting = append(waiting, fmt.Sprintf("%d of %d node(s) hold canaries", len(agents), want))
	}
	return agents, strings.Join(waiting, "; "), nil
}

// UninstallKata removes the kata-deploy release this run installed and waits until
// nothing of it is left (DaemonSet, RuntimeClasses, node labels), naming what stays.
func (e *Env) UninstallKata(ctx context.Context, timeout time.Duration) error {
	e.o.Logf("uninstalling kata-deploy and verifying it is gone")
	if err := katadeploy.Uninstall(ctx, e.o.Kubeconfig, "", timeout); err != nil {
		return err
	}
	classes := katadeploy.RuntimeClasses(e.o.Config.Kata)
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.kataState(ctx)
		if err != nil {
			return err
		}
		left := katadeploy.Gone(st, classes)
		if len(left) == 0 {
			e.installed = false
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kata-deploy uninstalled, but after %s these remain: %s", timeout, strings.Join(left, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.poll()):
		}
	}
}

// Down deletes the node agent (its SIGTERM removes the canaries) and every namespace
// of this run, and waits until they are gone, so a cluster kept or reused holds
// nothing of the run; Kata, when this run installed it, is uninstalled and verified
// gone.
func (e *Env) Down(ctx context.Context) error {
	if err := e.down(ctx); err != nil {
		return err
	}
	if e.installed {
		return e.UninstallKata(ctx, e.o.Config.Interval("cluster", "uninstall"))
	}
	return nil
}

func (e *Env) down(ctx context.Context) error {
	c := e.Target.Client().Resources()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.AgentNamespace()}}
	if err := c.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", ns.Name, err)
	}
	if err := e.Target.Cleanup(ctx); err != nil {
		return err
	}
	wait := e.o.Config.Interval("cluster", "namespace-delete")
	deadline := time.Now().Add(wait)
	for {
		var list corev1.NamespaceList
		if err := c.List(ctx, &list, resources.WithLabelSelector(target.LabelRun+"="+e.o.RunID)); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, n := range list.Items {
				names = append(names, n.Name+" ("+string(n.Status.Phase)+")")
			}
			return fmt.Errorf("the run's namespaces were not gone within %s (intervals cluster/namespace-delete): %s", wait, strings.Join(names, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// RemoveRun deletes every namespace a run left in a cluster (runID, or "" for every
// kwc run): its workspaces, the node agent (whose SIGTERM removes its canaries), the
// API checks' control. For a run that was killed before its own teardown.
func RemoveRun(ctx context.Context, kubeconfig, runID string) ([]string, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	selector := target.LabelRun
	if runID != "" {
		selector += "=" + runID
	}
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing kwc namespaces: %w", err)
	}
	var removed []string
	var errs []error
	for _, ns := range list.Items {
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns.Name)
	}
	return removed, errors.Join(errs...)
}
