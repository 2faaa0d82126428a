package specs

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/fixtures"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/proberun"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/kube/annotationcheck"
	"kwc.dev/kwc/internal/kube/apichecks"
	"kwc.dev/kwc/internal/kube/clusterrun"
	"kwc.dev/kwc/internal/kube/kataconfig"
	"kwc.dev/kwc/internal/kube/kubeletask"
	"kwc.dev/kwc/internal/kube/kubeworkspace"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/target/kubetarget"
)

// NonKernelInput is what the escape paths that do not cross the kernel need.
type NonKernelInput struct {
	Target *kubetarget.Target
	// Agent is the node agent of the workspace's node (nil: no configuration checks).
	Agent *clusterrun.Agent
	// KataVersion is the installed Kata (from kata-deploy's RuntimeClass annotation,
	// or the version this run installed).
	KataVersion string
	Timeout     config.Duration
	// APIControls are the API checks' results in this run's misconfigured namespace
	// (apichecks.Control); APIControlError says why there are none.
	APIControls     map[string]verdict.Result
	APIControlError error
}

// NonKernelFindings asks, for one workspace: the API as the workspace's identity (no
// token mounted, RBAC, admission of bad pods), the kubelet from inside the workspace
// on the node address the cluster reports, and, for VM-isolated lanes, Kata's and
// containerd's configuration on the workspace's node. The probe binary must already
// be installed in the workspace.
func NonKernelFindings(ctx context.Context, in NonKernelInput, ws target.Workspace) []verdict.Finding {
	lane := ws.Lane()
	pod, err := in.Target.PodOf(ctx, ws)
	if err != nil {
		return []verdict.Finding{{ID: "A00-api", Title: "the workspace's pod can be read", Result: verdict.Error, Reason: err.Error()}}
	}
	id := apichecks.Identity{Namespace: pod.Namespace, ServiceAccount: pod.Spec.ServiceAccountName}
	if id.ServiceAccount == "" {
		id.ServiceAccount = kubeworkspace.ServiceAccount
	}
	out := apichecks.WithControls(apichecks.Run(ctx, in.Target.RestConfig(), id, pod), in.APIControls, in.APIControlError)
	out = append(out, kubeletFromWorkspace(ctx, in, ws, pod))
	if lane.Isolation == config.IsolationVM {
		if in.Agent == nil {
			out = append(out, verdict.Finding{ID: "K00-node-config", Title: "the node's Kata configuration can be read", Result: verdict.Error, Reason: "no node agent on " + pod.Spec.NodeName})
			return out
		}
		n, err := in.Agent.NodeConfig(ctx)
		if err != nil {
			return append(out, verdict.Finding{ID: "K00-node-config", Title: "the node's Kata configuration can be read", Result: verdict.Error, Reason: err.Error()})
		}
		n.KataVersion = in.KataVersion
		adv, err := kataconfig.DecodeAdvisories(fixtures.Advisories())
		if err != nil {
			return append(out, verdict.Finding{ID: "K00-node-config", Result: verdict.Error, Reason: err.Error()})
		}
		out = append(out, kataconfig.Check(n, adv)...)
		out = append(out, kernelParamsCanary(ctx, in, lane, n))
	}
	return out
}

// kernelParamsCanary starts an admin-created pod under the lane's RuntimeClass with
// a kernel_params canary annotation, in a namespace of its own (the lane's quota holds
// one pod), reads the guest's command line and removes the namespace.
func kernelParamsCanary(ctx context.Context, in NonKernelInput, lane config.Lane, n kataconfig.Node) verdict.Finding {
	runID := in.Target.RunID()
	var rc nodev1.RuntimeClass
	if err := in.Target.Client().Resources().Get(ctx, lane.Runtime, "", &rc); err != nil {
		return annotationcheck.Judge(runID, false, nil, annotationcheck.Outcome{StartError: "reading RuntimeClass " + lane.Runtime + ": " + err.Error()})
	}
	allowed, why, err := kataconfig.AnnotationAllowed(n, rc.Handler, "kernel_params")
	if err != nil {
		f := annotationcheck.Judge(runID, false, why, annotationcheck.Outcome{})
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kubeworkspace.Namespace(runID, lane.Name) + "-ann", Labels: map[string]string{target.LabelRun: runID}}}
	res := in.Target.Client().Resources()
	if err := res.Create(ctx, ns); err != nil {
		return annotationcheck.Judge(runID, allowed, why, annotationcheck.Outcome{StartError: "creating namespace " + ns.Name + ": " + err.Error()})
	}
	defer func() { _ = res.Delete(context.WithoutCancel(ctx), ns) }()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	_ = res.Create(ctx, sa) // clusters without a controller manager have none
	pod, err := in.Target.StartPod(ctx, annotationcheck.Pod(ns.Name, lane.Runtime, in.Target.Image(), runID), "guest")
	if err != nil {
		return annotationcheck.Judge(runID, allowed, why, annotationcheck.Outcome{StartError: err.Error()})
	}
	r, err := pod.Exec(ctx, target.ExecRequest{Cmd: []string{"cat", "/proc/cmdline"}, Timeout: in.Timeout.Duration})
	if err != nil || !r.OK() {
		return annotationcheck.Judge(runID, allowed, why, annotationcheck.Outcome{StartError: fmt.Sprintf("reading /proc/cmdline: %v %s", err, r.Stderr)})
	}
	return annotationcheck.Judge(runID, allowed, why, annotationcheck.Outcome{Cmdline: r.Stdout})
}

// kubeletFromWorkspace asks the kubelet of the workspace's node from inside the
// workspace, at the address and port the Node object reports: nothing else.
func kubeletFromWorkspace(ctx context.Context, in NonKernelInput, ws target.Workspace, pod *corev1.Pod) verdict.Finding {
	fail := func(reason string) verdict.Finding {
		return verdict.Finding{ID: "A04-kubelet-api", Title: "the kubelet refuses anonymous and workspace requests; its read-only port is closed",
			Techniques: []string{"T27", "P14"}, Result: verdict.Error, Reason: reason}
	}
	var node corev1.Node
	if err := in.Target.Client().Resources().Get(ctx, pod.Spec.NodeName, "", &node); err != nil {
		return fail(fmt.Sprintf("reading node %s: %v", pod.Spec.NodeName, err))
	}
	host := ""
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			host = a.Address
			break
		}
	}
	if host == "" {
		return fail("node " + node.Name + " reports no InternalIP")
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = 10250
	}
	r, err := ws.Exec(ctx, target.ExecRequest{Cmd: []string{proberun.Binary, "kubelet", "--host", host, "--port", fmt.Sprint(port)}, Timeout: in.Timeout.Duration})
	if err != nil {
		return fail(err.Error())
	}
	if !r.OK() {
		return fail(fmt.Sprintf("kwc-probe kubelet: exit %d: %s", r.ExitCode, r.Stderr))
	}
	var answers []kubeletask.Answer
	if err := json.Unmarshal([]byte(r.Stdout), &answers); err != nil {
		return fail("reading kwc-probe's answers: " + err.Error())
	}
	f := apichecks.JudgeKubelet(answers)
	f.Evidence = append([]string{fmt.Sprintf("asked from inside %s (node %s, InternalIP %s)", ws.Name(), node.Name, host)}, f.Evidence...)
	status, cerr := apichecks.KubeletControl(ctx, in.Target.RestConfig(), host, port)
	return apichecks.WithControl(f, answers, status, cerr)
}
