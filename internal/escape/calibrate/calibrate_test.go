package calibrate

import (
	"strings"
	"testing"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/probespec"
)

// all returns a verdict per catalogue probe, r for each unless overridden.
func all(r verdict.Result, over map[string]verdict.Result) []verdict.ProbeVerdict {
	var out []verdict.ProbeVerdict
	for _, p := range probespec.Catalog {
		v := r
		if o, ok := over[p.ID]; ok {
			v = o
		}
		out = append(out, verdict.ProbeVerdict{ID: p.ID, Result: v, Control: p.Control})
	}
	return out
}

// reachedFor gives a control context: its designated probes reached, the rest blocked.
func reachedFor(control string) []verdict.ProbeVerdict {
	over := map[string]verdict.Result{}
	for _, p := range probespec.Catalog {
		if p.Control == control {
			over[p.ID] = verdict.Reached
		}
	}
	return all(verdict.Blocked, over)
}

func good() []Context {
	return []Context{
		{Name: "node", Kind: "node", Probes: all(verdict.Reached, nil)},
		{Name: "c1", Kind: "container", Control: "C1", Probes: reachedFor("C1")},
		{Name: "c2", Kind: "container", Control: "C2", Probes: reachedFor("C2")},
		{Name: "c3", Kind: "container", Control: "C3", Probes: reachedFor("C3")},
		{Name: "vm", Kind: "vm", Probes: all(verdict.Blocked, nil)},
	}
}

func TestCheckHolds(t *testing.T) {
	if p := Check(good()); len(p) != 0 {
		t.Fatalf("a sound calibration reported problems: %q", p)
	}
}

func TestCheckFindsAMissedControl(t *testing.T) {
	c := good()
	c[2].Probes = all(verdict.Blocked, nil)
	p := Check(c)
	if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "must be reached") {
		t.Fatalf("C2 reaching nothing must fail the calibration: %q", p)
	}
}

func TestCheckFindsAVMReach(t *testing.T) {
	c := good()
	c[4].Probes = all(verdict.Blocked, map[string]verdict.Result{"P03-kernel-log": verdict.Reached})
	if p := Check(c); len(p) != 1 || !strings.Contains(p[0], "P03-kernel-log: reached in vm vm") {
		t.Fatalf("a probe reached in the VM cries wolf: %q", p)
	}
	c[4].Probes = all(verdict.Blocked, map[string]verdict.Result{"P03-kernel-log": verdict.Error})
	if p := Check(c); len(p) != 1 {
		t.Fatalf("a probe that errs in the VM proves nothing: %q", p)
	}
}

// A sandbox context (gVisor) is held to the VM's rule: nothing may reach from there.
func TestCheckFindsASandboxReach(t *testing.T) {
	c := append(good(), Context{Name: "gvisor-privileged", Kind: "sandbox", Probes: all(verdict.Blocked, nil)})
	if p := Check(c); len(p) != 0 {
		t.Fatalf("a sandbox where everything is blocked holds: %q", p)
	}
	c[5].Probes = all(verdict.Blocked, map[string]verdict.Result{"P07-proc-root-file": verdict.Reached})
	if p := Check(c); len(p) != 1 || !strings.Contains(p[0], "reached in sandbox gvisor-privileged") {
		t.Fatalf("a probe reached in the sandbox must fail the calibration: %q", p)
	}
}

func TestCheckAcceptsNotApplicableOnlyWhenTheNodeAgrees(t *testing.T) {
	c := good()
	c[1].Probes = all(verdict.Blocked, map[string]verdict.Result{"P15-modprobe-path": verdict.NotApplicable})
	for _, p := range probespec.Catalog {
		if p.Control == "C1" && p.ID != "P15-modprobe-path" {
			for i := range c[1].Probes {
				if c[1].Probes[i].ID == p.ID {
					c[1].Probes[i].Result = verdict.Reached
				}
			}
		}
	}
	if p := Check(c); len(p) != 1 {
		t.Fatalf("not applicable in the control while the node reaches it: %q", p)
	}
	c[0].Probes = all(verdict.Reached, map[string]verdict.Result{"P15-modprobe-path": verdict.NotApplicable})
	if p := Check(c); len(p) != 0 {
		t.Fatalf("not applicable on the node too is accepted: %q", p)
	}
}

func TestCheckNeedsEveryControlAndTheNode(t *testing.T) {
	c := good()
	if p := Check(c[:3]); len(p) == 0 {
		t.Fatal("without a C3 context its probes are unproven")
	}
	c[0].Probes = all(verdict.Reached, map[string]verdict.Result{"P08-loopback-challenge": verdict.Blocked})
	if p := Check(c); len(p) != 1 || !strings.Contains(p[0], "on the node itself") {
		t.Fatalf("the node reference must reach everything: %q", p)
	}
}
