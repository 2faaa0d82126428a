package verdict

import (
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/probespec"
)

func observed(id string, facts map[string]string) probespec.Observation {
	return probespec.Observation{ID: id, Status: probespec.Observed, Facts: facts}
}

// Issue 11: an empty boot_id counted as "another kernel", which made the kernel-rule
// probes blocked. Unknown identity is an error, on either side.
func TestUnknownKernelIdentityIsAnError(t *testing.T) {
	node := map[string]string{"bootID": "node-boot"}
	for name, c := range map[string]struct {
		o    probespec.Observation
		node map[string]string
	}{
		"node boot_id unknown, same-kernel rule": {observed("P01-kernel-identity", map[string]string{"bootID": "ws-boot"}), map[string]string{}},
		"node boot_id unknown, writable knob":    {observed("P14-core-pattern", map[string]string{"bootID": "ws-boot", "writable": "true"}), map[string]string{}},
		"workspace boot_id unknown, writable":    {observed("P16-cgroup-release-agent", map[string]string{"writable": "true"}), node},
	} {
		if v := JudgeProbe(c.o, c.node, Secret{Token: "t"}); v.Result != Error {
			t.Errorf("%s: %s (%s), want error", name, v.Result, v.Reason)
		}
	}
	// Not writable is blocked whatever the kernel.
	if v := JudgeProbe(observed("P14-core-pattern", map[string]string{"writable": "false"}), map[string]string{}, Secret{}); v.Result != Blocked {
		t.Errorf("a knob that is not writable: %s", v.Result)
	}
}

// Issue 11: when sudo -n failed the probes ran unprivileged and root-only probes said
// blocked. A root probe's "blocked" as a user is an error.
func TestRootProbeWithoutRootIsAnError(t *testing.T) {
	res := probespec.Result{Context: map[string]string{"uid": "5001"}, Observations: []probespec.Observation{
		{ID: "P07-proc-root-file", Status: probespec.Observed},
		{ID: "P05-host-process-cmdline", Status: probespec.Observed},
	}}
	vs := JudgeAll(res, map[string]string{"bootID": "b"}, Secret{Token: "t"})
	if vs[0].Result != Error || !strings.Contains(vs[0].Reason, "needs root") {
		t.Errorf("P07 (root) as uid 5001: %s %s", vs[0].Result, vs[0].Reason)
	}
	if vs[1].Result != Blocked {
		t.Errorf("P05 needs no root: %s %s", vs[1].Result, vs[1].Reason)
	}
	res.Context["uid"] = "0"
	if vs := JudgeAll(res, map[string]string{"bootID": "b"}, Secret{Token: "t"}); vs[0].Result != Blocked {
		t.Errorf("P07 as root: %s", vs[0].Result)
	}
}

// Issue 11: a canary that failed to plant still yielded blocked.
func TestProbeOfAMissingCanaryIsAnError(t *testing.T) {
	res := probespec.Result{Context: map[string]string{"uid": "0"}, Observations: []probespec.Observation{
		{ID: "P08-loopback-challenge", Status: probespec.Observed},
		{ID: "P10-shm-file", Status: probespec.Observed},
	}}
	node := map[string]string{"bootID": "b", probespec.CanaryMissingFact(probespec.CanaryLoopback): "listen: address in use"}
	vs := JudgeAll(res, node, Secret{Token: "t"})
	if vs[0].Result != Error || !strings.Contains(vs[0].Reason, "not planted") {
		t.Errorf("P08 without its listener: %s %s", vs[0].Result, vs[0].Reason)
	}
	if vs[1].Result != Blocked {
		t.Errorf("P10's canary was planted: %s", vs[1].Result)
	}
}

// Issue 11: the host-state sweep was always a pass, so a lane whose every probe was
// skipped still passed escape. A pass needs at least one probe decided.
func TestEscapeNeedsPositiveEvidence(t *testing.T) {
	in := EscapeLane{Lane: subject(config.IsolationContainer),
		Contexts: map[string][]ProbeVerdict{"base": {pv("P05-host-process-cmdline", NotApplicable), pv("P14-core-pattern", NotApplicable)}},
		Controls: Controls{"P05-host-process-cmdline": Reached, "P14-core-pattern": Reached}}
	if c := EscapeCriterion(in); c.Verdict != Inconclusive || !strings.Contains(c.Reason, "no probe was decided") {
		t.Fatalf("every probe skipped: %s %s", c.Verdict, c.Reason)
	}
	in.Contexts["base"] = append(in.Contexts["base"], pv("P08-loopback-challenge", Blocked))
	in.Controls["P08-loopback-challenge"] = Reached
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("one probe blocked with its control proven: %s %s", c.Verdict, c.Reason)
	}
}

// Issue 11: a control that said "not applicable" (broken, or its workspace never got
// the privileges) made the subject's probe skipped. Only when the node itself agrees
// is the primitive absent; otherwise the subject's probe is inconclusive.
func TestABrokenControlProvesNothing(t *testing.T) {
	in := EscapeLane{Lane: subject(config.IsolationContainer),
		Contexts: map[string][]ProbeVerdict{"base": {pv("P11-sysv-shm", Blocked), pv("P08-loopback-challenge", Blocked)}},
		Controls: Controls{"P11-sysv-shm": NotApplicable, "P08-loopback-challenge": Reached},
		Node:     map[string]Result{"P11-sysv-shm": Reached, "P08-loopback-challenge": Reached}}
	c := EscapeCriterion(in)
	if c.Verdict != Inconclusive || !strings.Contains(c.Reason, "the control proves nothing") {
		t.Fatalf("control not applicable, node reached: %s %s", c.Verdict, c.Reason)
	}
	in.Node["P11-sysv-shm"] = NotApplicable
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("control and node agree the primitive is absent: %s %s", c.Verdict, c.Reason)
	}
}

// Issue 11: a VM or sandbox lane's kernel identity rested on boot_id alone, and a
// file bound over /proc/sys/kernel/random/boot_id made the node's kernel look like
// another: P01 blocked, and every writable knob "of another kernel". uname(2) and the
// boot time from sysinfo(2), which no file stands in for, are compared too.
func TestKernelIdentityNeedsMoreThanBootID(t *testing.T) {
	node := map[string]string{"bootID": "node-boot", "uname": "6.1.0-9 #1 SMP Debian", "bootTime": "1700000000"}
	masked := map[string]string{"bootID": "fake-boot", "uname": "6.1.0-9 #1 SMP Debian", "bootTime": "1700000001", "writable": "true"}
	for _, id := range []string{"P01-kernel-identity", "P14-core-pattern"} {
		if v := JudgeProbe(observed(id, masked), node, Secret{Token: "t"}); v.Result != Reached || !strings.Contains(v.Reason, "masked") {
			t.Errorf("%s with a masked boot_id: %s (%s), want reached", id, v.Result, v.Reason)
		}
	}
	// The same kernel build booted at another time is another kernel (a VM booting the
	// node's own kernel package).
	vm := map[string]string{"bootID": "vm-boot", "uname": "6.1.0-9 #1 SMP Debian", "bootTime": "1700050000", "writable": "true"}
	if v := JudgeProbe(observed("P14-core-pattern", vm), node, Secret{Token: "t"}); v.Result != Blocked {
		t.Errorf("another boot of the same build: %s (%s), want blocked", v.Result, v.Reason)
	}
	// Identical uname and no boot time to tell them apart: an error, never a block.
	noTime := map[string]string{"bootID": "vm-boot", "uname": "6.1.0-9 #1 SMP Debian"}
	if v := JudgeProbe(observed("P01-kernel-identity", noTime), node, Secret{Token: "t"}); v.Result != Error {
		t.Errorf("identical uname, no boot time: %s (%s), want error", v.Result, v.Reason)
	}
	other := map[string]string{"bootID": "g-boot", "uname": "4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016", "bootTime": "1700000000"}
	if v := JudgeProbe(observed("P01-kernel-identity", other), node, Secret{Token: "t"}); v.Result != Blocked {
		t.Errorf("another uname: %s (%s), want blocked", v.Result, v.Reason)
	}
}
