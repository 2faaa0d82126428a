package verdict

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
)

func observedRun() []ObservedLane {
	base := func(rs ...ProbeVerdict) map[string][]ProbeVerdict { return map[string][]ProbeVerdict{"base": rs} }
	return []ObservedLane{
		{Lane: config.Lane{Name: "c2", Role: config.RoleControl, Control: "C2"},
			Observation: EscapeObservation{Node: "a", Contexts: base(pv("P05-host-process-cmdline", Reached))}},
		{Lane: config.Lane{Name: "c2-b", Role: config.RoleControl, Control: "C2"},
			Observation: EscapeObservation{Node: "b", Contexts: base(pv("P05-host-process-cmdline", Blocked))}},
		{Lane: config.Lane{Name: "safe-a", Role: config.RoleSubject, Isolation: config.IsolationContainer},
			Observation: EscapeObservation{Node: "a", Contexts: base(pv("P05-host-process-cmdline", Blocked))}},
		{Lane: config.Lane{Name: "safe-b", Role: config.RoleSubject, Isolation: config.IsolationContainer},
			Observation: EscapeObservation{Node: "b", Contexts: base(pv("P05-host-process-cmdline", Blocked))}},
		{Lane: config.Lane{Name: "safe-c", Role: config.RoleSubject, Isolation: config.IsolationContainer},
			Observation: EscapeObservation{Node: "c", Contexts: base(pv("P05-host-process-cmdline", Blocked))}},
		{Lane: config.Lane{Name: "leaky-a", Role: config.RoleSubject, Isolation: config.IsolationContainer},
			Observation: EscapeObservation{Node: "a", Contexts: base(pv("P05-host-process-cmdline", Reached))}},
		{Lane: config.Lane{Name: "no-agent", Role: config.RoleSubject},
			Observation: EscapeObservation{Node: "a", Unobservable: "the node agent could not plant canaries: x"}},
	}
}

// Issue 13: lanes only observe and one judge decides after all of them, so the
// order in which lanes finish (serial, shuffled, parallel) never changes a verdict.
func TestJudgeEscapeIsOrderFree(t *testing.T) {
	want := JudgeEscape(observedRun())
	verdicts := map[string]config.Verdict{}
	for name, c := range want {
		verdicts[name] = c.Verdict
	}
	for name, v := range map[string]config.Verdict{
		"c2": Pass, "c2-b": Fail, // the control on node b did not reach its probe
		"safe-a": Pass, "leaky-a": Fail,
		"safe-b":   Inconclusive, // node b's control proved nothing
		"safe-c":   Inconclusive, // no control ran on node c
		"no-agent": Inconclusive,
	} {
		if verdicts[name] != v {
			t.Errorf("%s: %s, want %s (%s)", name, verdicts[name], v, want[name].Reason)
		}
	}
	if !strings.Contains(want["no-agent"].Reason, "could not plant") {
		t.Errorf("an unobservable lane says why: %q", want["no-agent"].Reason)
	}
	rng := rand.New(rand.NewSource(13))
	for i := 0; i < 50; i++ {
		run := observedRun()
		rng.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		if got := JudgeEscape(run); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d changed the verdicts:\n%v\nwant\n%v", i, got, want)
		}
	}
}

// A control filtered out of the run (never observed) proves nothing: its subjects are
// inconclusive, not passed.
func TestJudgeEscapeWithoutItsControl(t *testing.T) {
	var run []ObservedLane
	for _, l := range observedRun() {
		if l.Lane.Role != config.RoleControl {
			run = append(run, l)
		}
	}
	got := JudgeEscape(run)
	if got["safe-a"].Verdict != Inconclusive {
		t.Fatalf("a subject whose control did not run: %s %s", got["safe-a"].Verdict, got["safe-a"].Reason)
	}
	if got["leaky-a"].Verdict != Fail {
		t.Fatalf("a reached probe fails whatever the controls: %s", got["leaky-a"].Verdict)
	}
}

func TestEscapeLeaksNeedNoControl(t *testing.T) {
	run := observedRun()
	for _, l := range run {
		leaks := EscapeLeaks(l)
		switch l.Lane.Name {
		case "leaky-a":
			if len(leaks) != 1 || !strings.Contains(leaks[0], "base/P05-host-process-cmdline") {
				t.Errorf("leaky-a: %v", leaks)
			}
		default:
			if len(leaks) != 0 {
				t.Errorf("%s has no leak of its own: %v", l.Lane.Name, leaks)
			}
		}
	}
	l := run[2]
	l.Observation.HostDiff = []string{"/etc/passwd: a -> b"}
	if leaks := EscapeLeaks(l); len(leaks) != 1 {
		t.Errorf("a changed node is a leak: %v", leaks)
	}
}
