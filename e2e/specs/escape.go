package specs

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/proberun"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/verdict"
)

// Node is the node side of a lane: where its canaries are held and the node's state
// is read. The harness's own host on the docker target, the node agent of the
// workspace's node on Kubernetes.
type Node interface {
	nodeagent.Canaries
	Snapshot(ctx context.Context) (nodeagent.Snapshot, error)
	// Alive confirms the canaries and reads the node's kernel facts afresh.
	Alive(ctx context.Context) (nodeagent.Liveness, error)
}

// EscapeSpecInput is what EscapeSpec needs.
type EscapeSpecInput struct {
	Suite     *framework.Suite
	Lane      config.Lane
	Workspace target.Workspace
	Tools     *Toolbox
	// Node holds this run's canaries on the workspace's node; nil when no agent could
	// plant them there, and NodeError says why.
	Node      Node
	NodeError error
	// NodeReference is the probe set's result on the node itself.
	NodeReference []verdict.ProbeVerdict
	ProbeBin      []byte
	// Controls gathers what each control lane proved, per node; controls run before
	// subjects. NodeName is the node the workspace runs on ("" on docker).
	Controls verdict.NodeControls
	NodeName string
	// NonKernel asks the escape paths that do not cross the kernel (API, kubelet,
	// Kata's configuration) for this workspace; nil where there is no cluster.
	NonKernel func(ctx context.Context, ws target.Workspace) []verdict.Finding
}

// EscapeSpec runs the escape probes in the workspace, as root through sudo and nested
// in a privileged container the workspace's own engine starts, and judges them against
// the node's canaries and facts and against what the controls proved in this run.
func EscapeSpec(inputGetter func() EscapeSpecInput) {
	It("reaches nothing planted on the node: every probe blocked where its control reaches it, node state unchanged", framework.Label(framework.LabelEscape), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Suite).NotTo(BeNil(), "Invalid argument. input.Suite can't be nil when calling EscapeSpec")
		Expect(in.Workspace).NotTo(BeNil(), "Invalid argument. input.Workspace can't be nil when calling EscapeSpec: the lane's workspace did not start")
		if in.Node == nil {
			c := verdict.Criterion{Verdict: verdict.Inconclusive, Rule: verdict.RuleEscapeSubject,
				Reason: fmt.Sprintf("the node agent could not plant canaries: %v", in.NodeError), Checks: []verdict.Check{}}
			in.Suite.Record(in.Lane, "escape", c)
			framework.ExpectCriterion(in.Lane, "escape", c)
			return
		}
		tmo := in.Suite.Config.Interval("escape", "probe")
		in.Suite.Observed(in.Lane, "escape", "copying kwc-probe into the workspace", proberun.Install(ctx, in.Workspace, in.ProbeBin))
		spec := in.Node.Spec()
		sec := verdict.Secret{Marker: spec.Marker, Token: in.Node.Token()}

		before, err := in.Node.Snapshot(ctx)
		in.Suite.Observed(in.Lane, "escape", "reading the node's state before the lane", err)
		// Every canary confirmed before and after the lane, the node's kernel facts read
		// afresh: a "blocked" against a canary that was gone proves nothing.
		aliveBefore, aliveBeforeErr := in.Node.Alive(ctx)
		in.Suite.Observed(in.Lane, "escape", "confirming the canaries before the lane", aliveBeforeErr)
		res, ev, err := proberun.Run(ctx, in.Workspace, spec, tmo)
		in.Suite.Observed(in.Lane, "escape", "running kwc-probe in the workspace", withEvidence(err, ev))
		var nestedRes *probespec.Result
		var nestedNA string
		if in.Suite.Config.Probes.Nested && in.Tools != nil && in.Lane.Measures(framework.LabelRun) {
			nestedRes, nestedNA = nested(ctx, in)
		}
		aliveAfter, aliveAfterErr := in.Node.Alive(ctx)
		in.Suite.Observed(in.Lane, "escape", "confirming the canaries after the lane", aliveAfterErr)
		node := nodeagent.LaneFacts(in.Node.Facts(), in.Node.Inventory(), aliveBefore, aliveAfter, aliveBeforeErr, aliveAfterErr)
		AddReportEntry(in.Lane.Name+"/escape/canaries", fmt.Sprintf("before: dead %v revived %v; after: dead %v", aliveBefore.Dead, aliveBefore.Revived, aliveAfter.Dead))
		contexts := map[string][]verdict.ProbeVerdict{"base": verdict.JudgeAll(res, node, sec)}
		// The kernel the workspace runs on: the node's under runc, the guest's under Kata.
		for _, o := range res.Observations {
			if o.ID == "P01-kernel-identity" && o.Facts["kernel"] != "" {
				in.Suite.Recorder.SetEnv(map[string]string{"lane." + in.Lane.Name + ".kernel": o.Facts["kernel"], "lane." + in.Lane.Name + ".memTotal": o.Facts["memTotal"]})
			}
		}
		AddReportEntry(in.Lane.Name+"/escape/base", fmt.Sprintf("%d probes in %d ms as uid %s", len(res.Observations), res.DurationMS, res.Context["uid"]))

		switch {
		case nestedRes != nil:
			contexts["nested"] = verdict.JudgeAll(*nestedRes, node, sec)
		case nestedNA != "":
			contexts["nested"] = verdict.CatalogAsNotApplicable(nestedNA)
		}
		var findings []verdict.Finding
		if in.NonKernel != nil {
			findings = in.NonKernel(ctx, in.Workspace)
		}
		after, err := in.Node.Snapshot(ctx)
		in.Suite.Observed(in.Lane, "escape", "reading the node's state after the lane", err)
		diff := nodeagent.Diff(before, after)
		if in.Lane.Role == config.RoleControl {
			verdict.ControlsFrom(in.Controls.On(in.NodeName), in.Lane.Control, contexts["base"])
		}
		crit := verdict.EscapeCriterion(verdict.EscapeLane{Lane: in.Lane, Contexts: contexts, HostDiff: diff, Controls: in.Controls[in.NodeName], NodeName: in.NodeName,
			Node: verdict.ResultsByID(in.NodeReference), Findings: findings})
		in.Suite.Record(in.Lane, "escape", crit)
		framework.ExpectCriterion(in.Lane, "escape", crit)
	})
}

// nested runs the probe set in a privileged container started inside the workspace.
// Where the workspace cannot start one, it returns why instead (every nested probe is
// then not applicable, and the run criterion's evidence says why).
func nested(ctx context.Context, in EscapeSpecInput) (*probespec.Result, string) {
	var setup []string
	for _, tool := range []string{"docker", "podman"} {
		if _, unusable, err := in.Tools.Ensure(ctx, tool); err != nil || unusable != nil {
			setup = append(setup, fmt.Sprintf("%s: %v%v", tool, err, unusable))
		}
	}
	res, ev, applicable, err := proberun.Nested(ctx, in.Workspace, in.Node.Spec(), in.Tools.BaseRef(), in.Suite.Config.Interval("escape", "probe"))
	in.Suite.Observed(in.Lane, "escape", "running nested kwc-probe", withEvidence(err, ev))
	if !applicable {
		reason := "the workspace could not start a privileged container: " + lastLine(ev)
		if len(setup) > 0 {
			reason += " (" + strings.Join(setup, "; ") + ")"
		}
		return nil, reason
	}
	AddReportEntry(in.Lane.Name+"/escape/nested", ev)
	return &res, ""
}

// withEvidence adds what a failed command printed to its error, for the artifact.
func withEvidence(err error, evidence string) error {
	if err == nil || evidence == "" {
		return err
	}
	return fmt.Errorf("%w\n%s", err, evidence)
}
