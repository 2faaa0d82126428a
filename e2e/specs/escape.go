package specs

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/escape/proberun"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/target"
)

// EscapeSpecInput is what EscapeSpec needs.
type EscapeSpecInput struct {
	Suite     *framework.Suite
	Lane      config.Lane
	Workspace target.Workspace
	Tools     *Toolbox
	// Node holds this run's canaries on the workspace's node; nil when no agent could
	// plant them there, and NodeError says why.
	Node      framework.Node
	NodeError error
	// NodeReference is the probe set's result on the node itself.
	NodeReference []verdict.ProbeVerdict
	ProbeBin      []byte
	// NodeName is the node the workspace runs on ("" on docker).
	NodeName string
	// NonKernel asks the escape paths that do not cross the kernel (API, kubelet,
	// Kata's configuration) for this workspace; nil where there is no cluster.
	NonKernel func(ctx context.Context, ws target.Workspace) []verdict.Finding
}

// EscapeSpec runs the escape probes in the workspace, as root through sudo and nested
// in a privileged container the workspace's own engine starts, reads them against the
// node's canaries and facts, and records the observation. The verdict, which rests on
// what the controls proved on the same node, is judged once every lane has run.
func EscapeSpec(inputGetter func() EscapeSpecInput) {
	It("reaches nothing planted on the node: every probe blocked where its control reaches it, node state unchanged", framework.Label(framework.LabelEscape), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Suite).NotTo(BeNil(), "Invalid argument. input.Suite can't be nil when calling EscapeSpec")
		Expect(in.Workspace).NotTo(BeNil(), "Invalid argument. input.Workspace can't be nil when calling EscapeSpec: the lane's workspace did not start")
		if in.Node == nil {
			why := fmt.Sprintf("the node agent could not plant canaries: %v", in.NodeError)
			in.Suite.RecordEscapeObservation(in.Lane, verdict.EscapeObservation{Node: in.NodeName, Unobservable: why})
			Fail(fmt.Sprintf("lane %s: escape cannot be observed: %s", in.Lane.Name, why))
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
		obs := verdict.EscapeObservation{Node: in.NodeName, Contexts: contexts, HostDiff: diff,
			NodeReference: verdict.ResultsByID(in.NodeReference), Findings: findings}
		in.Suite.RecordEscapeObservation(in.Lane, obs)
		lane := verdict.ObservedLane{Lane: in.Lane, Observation: obs}
		if in.Lane.Role == config.RoleControl {
			// What a control proves rests on nothing but itself: judged here, and again
			// with every lane after the run.
			crit := verdict.JudgeEscape([]verdict.ObservedLane{lane})[in.Lane.Name]
			AddReportEntry(in.Lane.Name+"/escape", fmt.Sprintf("%s %s", crit.Verdict, in.Suite.Redact(crit.Reason)))
			framework.ExpectCriterion(in.Lane, "escape", crit)
			return
		}
		// A subject's verdict also rests on what the controls proved on its node: the
		// judge decides it after every lane has run. What this lane's own observation
		// already shows reached fails it now.
		leaks := verdict.EscapeLeaks(lane)
		AddReportEntry(in.Lane.Name+"/escape", fmt.Sprintf("observed; %d leaks of its own; the verdict is judged after every lane", len(leaks)))
		if in.Lane.Expect["escape"] != verdict.Fail {
			Expect(leaks).To(BeEmpty(), "lane %s reaches the node: %s", in.Lane.Name, in.Suite.Redact(strings.Join(leaks, "; ")))
		}
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
