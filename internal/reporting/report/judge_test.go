package report

import (
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

func observed(r verdict.Result) *verdict.EscapeObservation {
	return &verdict.EscapeObservation{Contexts: map[string][]verdict.ProbeVerdict{"base": {{ID: "P05-host-process-cmdline", Result: r, Control: "C2"}}}}
}

var judgeLanes = []config.Lane{
	{Name: "c2", Role: config.RoleControl, Control: "C2", Criteria: []string{"escape"}},
	{Name: "s", Role: config.RoleSubject, Isolation: config.IsolationContainer, Criteria: []string{"escape"}},
}

// Issue 13: each Ginkgo process records its own lanes; process 1 merges the parts and
// judges. The verdicts equal those of one process that saw every lane.
func TestMergedPartsJudgeAsOne(t *testing.T) {
	run := Run{ID: "r1", Start: time.Now()}
	one := NewRecorder(run, judgeLanes)
	one.SetEscapeObservation("c2", *observed(verdict.Reached))
	one.SetEscapeObservation("s", *observed(verdict.Blocked))

	p1, p2 := NewRecorder(run, judgeLanes), NewRecorder(run, judgeLanes)
	p1.SetEscapeObservation("s", *observed(verdict.Blocked))
	p2.SetEscapeObservation("c2", *observed(verdict.Reached))
	p2.AddLaneError("c2", "x went wrong")
	p1.Merge(p2.Part())

	a, b := one.Judge(), p1.Judge()
	if a["s"].Verdict != verdict.Pass || b["s"].Verdict != verdict.Pass {
		t.Fatalf("the subject passes once its control's part is merged: one %s, merged %s (%s)", a["s"].Verdict, b["s"].Verdict, b["s"].Reason)
	}
	if p1.Part().Lanes[0].Error != "x went wrong" {
		t.Fatalf("a part's lane error is merged: %+v", p1.Part().Lanes[0])
	}
	// Without the control's part, the subject proves nothing.
	alone := NewRecorder(run, judgeLanes)
	alone.SetEscapeObservation("s", *observed(verdict.Blocked))
	if got := alone.Judge()["s"].Verdict; got != verdict.Inconclusive {
		t.Fatalf("a subject without its control's observation: %s", got)
	}
}

// kwc report --rejudge decides escape again from a saved report's observations.
func TestRejudgeFromSavedObservations(t *testing.T) {
	r := NewRecorder(Run{ID: "r1", Start: time.Now()}, judgeLanes)
	r.SetEscapeObservation("c2", *observed(verdict.Reached))
	r.SetEscapeObservation("s", *observed(verdict.Blocked))
	r.SetCriterion("s", "escape", verdict.Criterion{Verdict: verdict.Inconclusive, Reason: "judged by an old rule"})
	c := r.Snapshot(time.Now())
	if n := Rejudge(&c); n != 2 {
		t.Fatalf("rejudged %d lanes, want 2", n)
	}
	for _, l := range c.Lanes {
		if got := l.Criteria["escape"].Verdict; got != verdict.Pass {
			t.Errorf("%s: %s (%s)", l.Name, got, l.Criteria["escape"].Reason)
		}
	}
}

func TestCompareVerdicts(t *testing.T) {
	mk := func(id string, v config.Verdict, check config.Verdict) Conformance {
		r := NewRecorder(Run{ID: id}, judgeLanes)
		r.SetCriterion("s", "sudo", verdict.Criterion{Verdict: v, Reason: "reason " + id,
			Checks: []verdict.Check{{ID: "sudo-n", Verdict: check, Evidence: "differs " + id}}})
		return r.Snapshot(time.Now())
	}
	if d := CompareVerdicts(mk("a", verdict.Pass, verdict.Pass), mk("b", verdict.Pass, verdict.Pass)); len(d) != 0 {
		t.Fatalf("evidence and reasons are not verdicts: %v", d)
	}
	d := CompareVerdicts(mk("a", verdict.Pass, verdict.Pass), mk("b", verdict.Fail, verdict.Fail))
	if len(d) != 2 || d[1] != "s sudo: pass in a, fail in b" || d[0] != "s sudo check sudo-n: pass in a, fail in b" {
		t.Fatalf("differences: %q", d)
	}
}
