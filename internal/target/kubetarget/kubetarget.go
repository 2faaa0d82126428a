// Package kubetarget runs workspaces as pods of a Kubernetes cluster (kind or an
// existing one): objects built by kubeworkspace and created through e2e-framework's
// klient, waited for with its conditions, exec and copy through client-go's
// remotecommand (websocket, falling back to SPDY), the way kubectl exec and cp work.
package kubetarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/kubeworkspace"
	"kwc.dev/kwc/internal/target"
)

// Options configure the target.
type Options struct {
	Name             string // kind or cluster
	RunID            string
	Image            string
	ImageStore       string
	ContainerdSocket string
	// StartTimeout bounds how long a workspace pod may take to run.
	StartTimeout time.Duration
}

// Target is a Kubernetes cluster.
type Target struct {
	o    Options
	rest *rest.Config
	kc   klient.Client
	cs   kubernetes.Interface
}

// New connects to the cluster behind cfg.
func New(cfg *rest.Config, o Options) (*Target, error) {
	kc, err := klient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s target: %w", o.Name, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s target: %w", o.Name, err)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 5 * time.Minute
	}
	return &Target{o: o, rest: cfg, kc: kc, cs: cs}, nil
}

func (t *Target) Name() string { return t.o.Name }

// Preflight checks that the API server answers.
func (t *Target) Preflight(ctx context.Context) error {
	if _, err := t.cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("the cluster's API server at %s does not answer: %w\n  fix: check KUBECONFIG and that the cluster is up", t.rest.Host, err)
	}
	return nil
}

// Runtimes lists the RuntimeClasses, plus "default" (no RuntimeClass).
func (t *Target) Runtimes(ctx context.Context) ([]string, error) {
	var list nodev1.RuntimeClassList
	if err := t.kc.Resources().List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing RuntimeClasses: %w", err)
	}
	out := []string{"default"}
	for _, rc := range list.Items {
		out = append(out, rc.Name)
	}
	sort.Strings(out[1:])
	return out, nil
}

// Describe records the cluster's versions and each node's kernel and runtime.
func (t *Target) Describe(ctx context.Context) map[string]string {
	f := map[string]string{"cluster.host": t.rest.Host}
	if v, err := t.cs.Discovery().ServerVersion(); err == nil {
		f["kubernetes.version"] = v.GitVersion
	}
	var nodes corev1.NodeList
	if err := t.kc.Resources().List(ctx, &nodes); err == nil {
		for _, n := range nodes.Items {
			i := n.Status.NodeInfo
			f["node."+n.Name] = fmt.Sprintf("kernel %s, %s, kubelet %s, boot %s", i.KernelVersion, i.ContainerRuntimeVersion, i.KubeletVersion, i.BootID)
		}
	}
	return f
}

// StartWorkspace creates the lane's objects and waits for the pod to run. When it
// does not, the error carries the pod's phase, conditions, container states and
// events: what explains a stuck workspace without a re-run.
func (t *Target) StartWorkspace(ctx context.Context, lane config.Lane) (target.Workspace, error) {
	o := kubeworkspace.Options{RunID: t.o.RunID, Lane: lane, Image: t.o.Image, ImageStore: t.o.ImageStore, ContainerdSocket: t.o.ContainerdSocket}
	if lane.Runtime != "" && lane.Runtime != "default" {
		// The quota must hold the class's own overhead, whatever it is.
		var rc nodev1.RuntimeClass
		if err := t.kc.Resources().Get(ctx, lane.Runtime, "", &rc); err != nil {
			return nil, fmt.Errorf("lane %s: reading RuntimeClass %s: %w", lane.Name, lane.Runtime, err)
		}
		o.Overhead = corev1.ResourceList{}
		if rc.Overhead != nil {
			o.Overhead = rc.Overhead.PodFixed
		}
	}
	objs, err := kubeworkspace.Build(o)
	if err != nil {
		return nil, err
	}
	create := []client.Object{objs.Namespace, objs.ServiceAccount, objs.ResourceQuota}
	if objs.NetworkPolicy != nil {
		create = append(create, objs.NetworkPolicy)
	}
	for _, o := range create {
		if err := t.kc.Resources().Create(ctx, o); err != nil {
			return nil, fmt.Errorf("lane %s: creating %T %s: %w", lane.Name, o, o.GetName(), err)
		}
	}
	ws := &workspace{t: t, lane: lane, ns: objs.Pod.Namespace, pod: objs.Pod.Name, container: kubeworkspace.ContainerName}
	if err := t.startPod(ctx, objs.Pod, ws); err != nil {
		return nil, fmt.Errorf("lane %s: %w", lane.Name, err)
	}
	return ws, nil
}

// StartPod creates a pod (its namespace must exist) and waits for it to run; the
// handle execs into container. When it does not run, the error carries the pod's
// phase, conditions, container states and events.
func (t *Target) StartPod(ctx context.Context, pod *corev1.Pod, container string) (target.Workspace, error) {
	ws := &workspace{t: t, lane: config.Lane{Name: pod.Name}, ns: pod.Namespace, pod: pod.Name, container: container, foreign: true}
	if err := t.startPod(ctx, pod, ws); err != nil {
		return nil, err
	}
	return ws, nil
}

// startPod creates pod, waits for it to run and records its node in ws.
func (t *Target) startPod(ctx context.Context, pod *corev1.Pod, ws *workspace) error {
	if err := t.kc.Resources().Create(ctx, pod); err != nil {
		return fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	err := wait.For(conditions.New(t.kc.Resources()).PodRunning(pod), wait.WithTimeout(t.o.StartTimeout), wait.WithInterval(2*time.Second), wait.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("pod %s did not run within %s: %s", ws.Name(), t.o.StartTimeout, ws.explain(context.WithoutCancel(ctx)))
	}
	var p corev1.Pod
	if err := t.kc.Resources().Get(ctx, ws.pod, ws.ns, &p); err == nil {
		ws.node = p.Spec.NodeName
	}
	return nil
}

// Pod is a handle on a running pod's container that is not a workspace (the node
// agent's), with the same exec and copy; Stop leaves it alone.
func (t *Target) Pod(ns, pod, container, node string) target.Workspace {
	return &workspace{t: t, lane: config.Lane{Name: pod}, ns: ns, pod: pod, container: container, node: node, foreign: true}
}

// NodeOf returns the node a workspace of this target runs on.
func NodeOf(w target.Workspace) string {
	if kw, ok := w.(*workspace); ok {
		return kw.node
	}
	return ""
}

// Cleanup deletes every namespace of this run; the namespace controller removes the
// rest.
func (t *Target) Cleanup(ctx context.Context) error {
	var list corev1.NamespaceList
	if err := t.kc.Resources().List(ctx, &list, resources.WithLabelSelector(target.LabelRun+"="+t.o.RunID)); err != nil {
		return fmt.Errorf("listing this run's namespaces: %w", err)
	}
	var errs []error
	for i := range list.Items {
		if err := t.kc.Resources().Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type workspace struct {
	t                  *Target
	lane               config.Lane
	ns, pod, container string
	node               string
	foreign            bool // not created by this target: Stop does nothing
}

func (w *workspace) Lane() config.Lane { return w.lane }
func (w *workspace) Name() string      { return w.ns + "/" + w.pod }
func (w *workspace) EnterHint() string {
	return fmt.Sprintf("kubectl --kubeconfig <run folder>/kubeconfig -n %s exec -it %s -- bash", w.ns, w.pod)
}

// Describe is the pod as kubectl describe would explain it: phase, conditions,
// container states and the namespace's events, for a failed lane's artifacts.
func (w *workspace) Describe(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s on node %s\n", w.Name(), w.node)
	for _, part := range strings.Split(w.explain(ctx), "; ") {
		b.WriteString("  " + part + "\n")
	}
	if ev, err := w.t.cs.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{}); err == nil {
		b.WriteString("events in " + w.ns + ":\n")
		for _, e := range ev.Items {
			fmt.Fprintf(&b, "  %s %s %s/%s: %s %s\n", e.LastTimestamp.UTC().Format(time.RFC3339), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}

// explain summarises why a pod is not running.
func (w *workspace) explain(ctx context.Context) string {
	var p corev1.Pod
	if err := w.t.kc.Resources().Get(ctx, w.pod, w.ns, &p); err != nil {
		return "the pod cannot be read: " + err.Error()
	}
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s %s %s", c.Type, c.Status, c.Reason, c.Message))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		}
	}
	if len(p.Status.Conditions) == 0 {
		parts = append(parts, "no condition reported: no scheduler placed it (are nodes Ready, does a node match the RuntimeClass's nodeSelector?)")
	}
	if ev, err := w.t.cs.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + w.pod}); err == nil {
		for _, e := range ev.Items {
			parts = append(parts, fmt.Sprintf("event %s: %s", e.Reason, e.Message))
		}
	}
	return strings.Join(parts, "; ")
}

// Exec runs a command in the workspace container, wrapped in timeout(1) as on the
// docker target, and returns its exit code.
func (w *workspace) Exec(ctx context.Context, req target.ExecRequest) (res target.ExecResult, err error) {
	if req.User != "" {
		return res, fmt.Errorf("exec as %q: Kubernetes exec runs as the container's user; use sudo", req.User)
	}
	cmd := req.Cmd
	if req.Timeout > 0 {
		// Workspaces get timeout(1) so a stuck command dies in the pod too; a foreign
		// pod (the agent's busybox) gets the deadline only.
		if !w.foreign {
			cmd = append([]string{"timeout", "--kill-after=5", strconv.FormatFloat(req.Timeout.Seconds(), 'f', 1, 64)}, cmd...)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout+15*time.Second)
		defer cancel()
	}
	res = target.ExecResult{Cmd: req.Cmd}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	ex, err := w.executor(cmd, req.Stdin != nil)
	if err != nil {
		return res, err
	}
	var stdout, stderr bytes.Buffer
	serr := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: req.Stdin, Stdout: &stdout, Stderr: &stderr})
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	var exitErr utilexec.ExitError
	switch {
	case serr == nil:
	case errors.As(serr, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
	case ctx.Err() != nil:
		res.TimedOut, res.ExitCode = true, -1
		return res, nil
	default:
		if aerr := w.Alive(context.WithoutCancel(ctx)); aerr != nil {
			return res, fmt.Errorf("exec %q in %s: %w", strings.Join(req.Cmd, " "), w.Name(), aerr)
		}
		return res, fmt.Errorf("exec %q in %s: %w", strings.Join(req.Cmd, " "), w.Name(), serr)
	}
	if req.Timeout > 0 && !w.foreign && (res.ExitCode == 124 || res.ExitCode == 137) {
		res.TimedOut = true
	}
	return res, nil
}

func (w *workspace) executor(cmd []string, stdin bool) (remotecommand.Executor, error) {
	return w.t.executor(w.ns, w.pod, w.container, cmd, stdin)
}

// executor prefers the websocket protocol and falls back to SPDY for API servers
// that cannot upgrade, as kubectl does.
func (t *Target) executor(ns, pod, container string, cmd []string, stdin bool) (remotecommand.Executor, error) {
	req := t.cs.CoreV1().RESTClient().Post().Resource("pods").Name(pod).Namespace(ns).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(t.rest, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(t.rest, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// ExecPod runs a command in any pod's container (the node agent's) and returns its
// standard output; a failure carries its standard error.
func (t *Target) ExecPod(ctx context.Context, ns, pod, container string, cmd ...string) ([]byte, error) {
	ex, err := t.executor(ns, pod, container, cmd, false)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return nil, fmt.Errorf("exec %v in %s/%s: %w: %s", cmd, ns, pod, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// Image is the workspace image as the nodes pull it.
func (t *Target) Image() string { return t.o.Image }

// RunID is the run this target labels its objects with.
func (t *Target) RunID() string { return t.o.RunID }

// RestConfig is the harness's own credential for the cluster (the kubeconfig's).
func (t *Target) RestConfig() *rest.Config { return rest.CopyConfig(t.rest) }

// PodOf returns the pod object of a workspace of this target.
func (t *Target) PodOf(ctx context.Context, w target.Workspace) (*corev1.Pod, error) {
	kw, ok := w.(*workspace)
	if !ok {
		return nil, fmt.Errorf("%s is not a pod of this target", w.Name())
	}
	var p corev1.Pod
	if err := t.kc.Resources().Get(ctx, kw.pod, kw.ns, &p); err != nil {
		return nil, fmt.Errorf("reading pod %s: %w", w.Name(), err)
	}
	return &p, nil
}

// Client is the target's klient, for the run's own objects (the node agent).
func (t *Target) Client() klient.Client { return t.kc }

// CopyIn unpacks a tar stream in dir, as kubectl cp does (tar in the container).
func (w *workspace) CopyIn(ctx context.Context, dir string, tarStream io.Reader) error {
	r, err := w.Exec(ctx, target.ExecRequest{Cmd: []string{"tar", "-x", "-m", "-C", dir}, Stdin: tarStream, Timeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("unpacking into %s:%s: exit %d: %s", w.Name(), dir, r.ExitCode, r.Stderr)
	}
	return nil
}

// CopyOut returns a tar stream of path.
func (w *workspace) CopyOut(ctx context.Context, path string) (io.ReadCloser, error) {
	dir, base := path[:strings.LastIndex(path, "/")+1], path[strings.LastIndex(path, "/")+1:]
	if dir == "" {
		dir = "."
	}
	ex, err := w.executor([]string{"tar", "-c", "-C", dir, base}, false)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	go func() {
		err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: pw, Stderr: &stderr})
		if err != nil {
			err = fmt.Errorf("copying %s:%s out: %w %s", w.Name(), path, err, stderr.String())
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (w *workspace) Logs(ctx context.Context) (string, error) {
	tail := int64(200)
	b, err := w.t.cs.CoreV1().Pods(w.ns).GetLogs(w.pod, &corev1.PodLogOptions{Container: w.container, TailLines: &tail}).DoRaw(ctx)
	return string(b), err
}

func (w *workspace) Alive(ctx context.Context) error {
	var p corev1.Pod
	if err := w.t.kc.Resources().Get(ctx, w.pod, w.ns, &p); err != nil {
		return fmt.Errorf("workspace %s is gone: %w", w.Name(), err)
	}
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("workspace %s is %s: %s", w.Name(), p.Status.Phase, w.explain(ctx))
	}
	return nil
}

// Stop deletes the lane's namespace and with it everything of the workspace.
func (w *workspace) Stop(ctx context.Context) error {
	if w.foreign {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}
	if err := w.t.kc.Resources().Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", w.ns, err)
	}
	return nil
}

var _ target.Target = (*Target)(nil)
