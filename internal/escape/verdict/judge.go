package verdict

import (
	"fmt"
	"sort"

	"kwc.dev/kwc/internal/config"
)

// EscapeObservation is what one lane's escape spec saw: everything its escape verdict
// is decided from except what the other lanes saw. Lanes only observe; JudgeEscape
// decides once every lane has been observed, so neither the order lanes ran in nor
// running them in parallel can change a verdict.
//
// The probe verdicts are the lane's probe results already read against the node's
// canaries (JudgeAll): that reading needs the run's secret, which never leaves the
// run, so it happens where the probe ran. What depends on other lanes (the controls'
// proofs on the lane's node) is left to the judge.
type EscapeObservation struct {
	// Node is the node the workspace ran on ("" on the docker target: the harness's
	// own host).
	Node string `json:"node"`
	// Contexts maps a context (base, nested) to its probe verdicts.
	Contexts map[string][]ProbeVerdict `json:"contexts,omitempty"`
	// HostDiff is what changed on the node while the lane ran.
	HostDiff []string `json:"hostDiff,omitempty"`
	// NodeReference is the probe set's result on the node itself.
	NodeReference map[string]Result `json:"nodeReference,omitempty"`
	// Findings are the cluster-side checks (API, kubelet, Kata configuration).
	Findings []Finding `json:"findings,omitempty"`
	// Unobservable says why the lane could not be probed at all (no canaries on its
	// node); its escape criterion is inconclusive with this reason.
	Unobservable string `json:"unobservable,omitempty"`
}

// ObservedLane is one lane and what its escape spec observed.
type ObservedLane struct {
	Lane        config.Lane
	Observation EscapeObservation
}

// JudgeEscape decides the escape criterion of every observed lane: first what each
// control lane proved on its node, then each lane against the controls of its own
// node. A control that was not observed (filtered out, failed to start) proves
// nothing, so the subjects it would have proved are inconclusive.
func JudgeEscape(lanes []ObservedLane) map[string]Criterion {
	// Sorted by name, so that even a rule that depended on order could not depend on
	// the order lanes finished in.
	sorted := append([]ObservedLane(nil), lanes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Lane.Name < sorted[j].Lane.Name })
	controls := NodeControls{}
	for _, l := range sorted {
		if l.Lane.Role == config.RoleControl && l.Observation.Unobservable == "" {
			ControlsFrom(controls.On(l.Observation.Node), l.Lane.Control, l.Observation.Contexts["base"])
		}
	}
	out := map[string]Criterion{}
	for _, l := range sorted {
		o := l.Observation
		if o.Unobservable != "" {
			rule := RuleEscapeSubject
			if l.Lane.Role == config.RoleControl {
				rule = RuleEscapeControl
			}
			out[l.Lane.Name] = Criterion{Verdict: Inconclusive, Rule: rule, Reason: o.Unobservable, Checks: []Check{}}
			continue
		}
		out[l.Lane.Name] = EscapeCriterion(EscapeLane{Lane: l.Lane, Contexts: o.Contexts, HostDiff: o.HostDiff,
			Controls: controls[o.Node], NodeName: o.Node, Node: o.NodeReference, Findings: o.Findings})
	}
	return out
}

// EscapeLeaks lists what a lane's own observation already shows reached, whatever the
// controls prove: a reached probe or cluster finding in a subject, a changed node.
// The escape spec fails on these at once; the verdict itself comes from JudgeEscape.
func EscapeLeaks(l ObservedLane) []string {
	var out []string
	if l.Lane.Role != config.RoleControl {
		ctxs := make([]string, 0, len(l.Observation.Contexts))
		for c := range l.Observation.Contexts {
			ctxs = append(ctxs, c)
		}
		sort.Strings(ctxs)
		for _, c := range ctxs {
			for _, pv := range l.Observation.Contexts[c] {
				if pv.Result != Reached {
					continue
				}
				if pv.ID == "P01-kernel-identity" && l.Lane.Isolation == config.IsolationContainer {
					continue // sharing the kernel is what container isolation is
				}
				out = append(out, fmt.Sprintf("%s/%s: %s", c, pv.ID, pv.Reason))
			}
		}
		for _, f := range l.Observation.Findings {
			if f.Result == Reached {
				out = append(out, fmt.Sprintf("cluster/%s: %s", f.ID, f.Reason))
			}
		}
	}
	for _, d := range l.Observation.HostDiff {
		out = append(out, "node state changed: "+d)
	}
	return out
}
