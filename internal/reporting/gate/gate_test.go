package gate

import (
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/reporting/report"
)

func lane(name string, role config.Role, iso config.Isolation, v map[string]config.Verdict) *report.Lane {
	l := &report.Lane{Name: name, Role: role, Isolation: iso, Criteria: map[string]*verdict.Criterion{}}
	for c, vv := range v {
		l.Criteria[c] = &verdict.Criterion{Verdict: vv, Reason: "because", Checks: []verdict.Check{{ID: c + "-check", Verdict: vv}}}
	}
	return l
}

// dockerRun is what today's docker target produces: runc lanes, no Kata lane.
func dockerRun() report.Conformance {
	all := func(v config.Verdict) map[string]config.Verdict {
		return map[string]config.Verdict{"sudo": v, "build": v, "run": v, "escape": v}
	}
	gitlab := all(config.VerdictPass)
	gitlab["build"], gitlab["run"] = config.VerdictFail, config.VerdictFail
	return report.Conformance{Lanes: []*report.Lane{
		lane("runc-privileged", config.RoleControl, config.IsolationContainer, all(config.VerdictPass)),
		lane("c2", config.RoleControl, config.IsolationContainer, all(config.VerdictPass)),
		lane("c3", config.RoleControl, config.IsolationContainer, all(config.VerdictPass)),
		lane("runc-gitlab", config.RoleSubject, config.IsolationContainer, gitlab),
	}}
}

const kataPolicy = `apiVersion: kwc.dev/v1alpha1
kind: GatePolicy
rules:
  - name: Kata lanes meet all four criteria
    lanes: {role: subject, isolation: vm}
    criteria: [sudo, build, run, escape]
    minLanes: 1
`

func TestKataPolicyFailsWithoutAKataLaneAndSaysWhy(t *testing.T) {
	p, err := DecodePolicy([]byte(kataPolicy), "test")
	if err != nil {
		t.Fatal(err)
	}
	d := Evaluate(p, dockerRun())
	if d.Pass || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], "needs at least 1 lane(s) with role subject, isolation vm, the run had 0") {
		t.Fatalf("%+v", d)
	}
	c := dockerRun()
	c.Lanes = append(c.Lanes, lane("kata-qemu", config.RoleSubject, config.IsolationVM, map[string]config.Verdict{"sudo": "pass", "build": "fail", "run": "pass", "escape": "pass"}))
	d = Evaluate(p, c)
	if d.Pass || !strings.Contains(strings.Join(d.Reasons, "\n"), "lane kata-qemu build is fail, must be pass") {
		t.Fatalf("a failing Kata criterion must be named: %+v", d)
	}
}

func TestRuncPolicyPasses(t *testing.T) {
	p, err := DecodePolicy([]byte(`apiVersion: kwc.dev/v1alpha1
kind: GatePolicy
rules:
  - {name: gitlab sudo and escape, lanes: {names: [runc-gitlab]}, criteria: [sudo, escape], minLanes: 1}
  - {name: controls, lanes: {role: control}, criteria: [escape], minLanes: 3}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, dockerRun()); !d.Pass {
		t.Fatalf("%+v", d)
	}
	c := dockerRun()
	c.Run.Error = "interrupted"
	if d := Evaluate(p, c); d.Pass {
		t.Fatal("an incomplete run never passes a gate")
	}
}

func TestPolicyValidation(t *testing.T) {
	for body, want := range map[string]string{
		"apiVersion: kwc.dev/v1alpha1\nkind: GatePolicy\n":                                                 "rules: none",
		"apiVersion: kwc.dev/v1alpha1\nkind: GatePolicy\nrules: [{name: x, criteria: [speed]}]\n":          "unknown criterion",
		"apiVersion: kwc.dev/v1alpha1\nkind: GatePolicy\nrules: [{name: x, criteria: [sudo], lane: {}}]\n": "unknown field",
		"apiVersion: kwc.dev/v1\nkind: GatePolicy\nrules: [{name: x, criteria: [sudo]}]\n":                 "want kwc.dev/v1alpha1",
	} {
		if _, err := DecodePolicy([]byte(body), "t"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

func TestCompareListsRegressionsAndFixes(t *testing.T) {
	base := dockerRun()
	now := dockerRun()
	now.Lanes[3].Criteria["escape"] = &verdict.Criterion{Verdict: config.VerdictFail, Checks: []verdict.Check{{ID: "escape-check", Verdict: config.VerdictFail}}}
	now.Lanes[3].Criteria["build"] = &verdict.Criterion{Verdict: config.VerdictPass, Checks: []verdict.Check{{ID: "build-check", Verdict: config.VerdictPass}}}
	reg, fixes := Compare(base, now)
	if len(reg) != 2 || reg[0].What != "runc-gitlab/escape" || reg[1].What != "runc-gitlab/escape/escape-check" {
		t.Fatalf("regressions %+v", reg)
	}
	if len(fixes) != 2 || fixes[0].What != "runc-gitlab/build" {
		t.Fatalf("fixes %+v", fixes)
	}
}

// The decoy policy: its lanes must fail escape, and for the VM-kernel reason only.
func TestNegativeControlMustFailForItsReason(t *testing.T) {
	p, err := LoadPolicy("../../../fixtures/policies/decoy-kata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	decoy := func(verdict config.Verdict, reason string) report.Conformance {
		c := dockerRun()
		for _, n := range []string{"kata-decoy-gitlab", "kata-decoy-privileged"} {
			l := lane(n, config.RoleSubject, config.IsolationVM, map[string]config.Verdict{"escape": verdict})
			l.Runtime = "kata-decoy"
			l.Criteria["escape"].Reason = reason
			c.Lanes = append(c.Lanes, l)
		}
		return c
	}
	if d := Evaluate(p, decoy(config.VerdictFail, "the lane is declared vm-isolated but runs on the node's kernel (base: ...)")); !d.Pass {
		t.Fatalf("caught for the right reason must pass: %+v", d)
	}
	if d := Evaluate(p, decoy(config.VerdictPass, "")); d.Pass {
		t.Fatal("a decoy that passes must fail the gate")
	}
	if d := Evaluate(p, decoy(config.VerdictFail, "base/P05: reached")); d.Pass || !strings.Contains(d.Reasons[0], "for another reason") {
		t.Fatalf("a decoy failing for another reason proves nothing: %+v", d)
	}
}
