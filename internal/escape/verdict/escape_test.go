package verdict

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/probespec"
)

var (
	sec  = Secret{Marker: "kwc-canary-r1", Token: "0123456789abcdef0123456789abcdef"}
	node = map[string]string{"bootID": "node-boot", "modulesHash": "3:abc", "engineID": "ENGINE-1"}
)

func obs(id string, cands []string, facts map[string]string) probespec.Observation {
	return probespec.Observation{ID: id, Status: probespec.Observed, Candidates: cands, Facts: facts, Evidence: []string{"read " + strings.Join(cands, ",")}}
}

func TestSecretRule(t *testing.T) {
	v := JudgeProbe(obs("P05-host-process-cmdline", []string{"kwc-canary-r1:" + sec.Token + " 10800"}, nil), node, sec)
	if v.Result != Reached {
		t.Fatalf("a candidate holding the secret is reached: %+v", v)
	}
	if strings.Contains(v.Reason+v.Evidence, sec.Token) {
		t.Fatal("the secret must be redacted from reason and evidence")
	}
	// The marker alone (a name) is not the secret: seeing a name proves nothing.
	if v := JudgeProbe(obs("P05-host-process-cmdline", []string{"kwc-canary-r1"}, nil), node, sec); v.Result != Blocked {
		t.Fatalf("the marker without the secret must not count: %+v", v)
	}
}

func TestChallengeRule(t *testing.T) {
	m := hmac.New(sha256.New, []byte(sec.Token))
	m.Write([]byte("n1"))
	good := "challenge:n1:" + hex.EncodeToString(m.Sum(nil))
	if v := JudgeProbe(obs("P08-loopback-challenge", []string{good}, nil), node, sec); v.Result != Reached {
		t.Fatalf("a correct HMAC is reached: %+v", v)
	}
	// A listener that does not know the secret (the guest's own, an impostor) fails.
	if v := JudgeProbe(obs("P08-loopback-challenge", []string{"challenge:n1:deadbeef"}, nil), node, sec); v.Result != Blocked {
		t.Fatalf("a wrong answer is blocked: %+v", v)
	}
	if v := JudgeProbe(obs("P09-abstract-socket", []string{"challenge:n2:" + hex.EncodeToString(m.Sum(nil))}, nil), node, sec); v.Result != Blocked {
		t.Fatalf("an answer replayed for another nonce is blocked: %+v", v)
	}
}

func TestSameKernelRules(t *testing.T) {
	if v := JudgeProbe(obs("P01-kernel-identity", nil, map[string]string{"bootID": "node-boot"}), node, sec); v.Result != Reached {
		t.Fatalf("equal boot_id is the node's kernel: %+v", v)
	}
	if v := JudgeProbe(obs("P01-kernel-identity", nil, map[string]string{"bootID": "guest"}), node, sec); v.Result != Blocked {
		t.Fatalf("another boot_id is another kernel: %+v", v)
	}
	if v := JudgeProbe(obs("P01-kernel-identity", nil, nil), node, sec); v.Result != Error {
		t.Fatalf("no boot_id is an error, not a pass: %+v", v)
	}
	mods := func(errno string) probespec.Observation {
		return obs("P18-kernel-modules", nil, map[string]string{"bootID": "node-boot", "modulesHash": "3:abc", "finitModuleErrno": errno})
	}
	if v := JudgeProbe(mods("EPERM"), node, sec); v.Result != Blocked {
		t.Fatalf("module loading denied is blocked: %+v", v)
	}
	if v := JudgeProbe(mods("EBADF"), node, sec); v.Result != Reached {
		t.Fatalf("module loading permitted on the node's kernel is reached: %+v", v)
	}
	// Found on a kernel built without modules, under a pod with no seccomp profile.
	if v := JudgeProbe(mods("ENOSYS"), node, sec); v.Result != NotApplicable {
		t.Fatalf("a kernel without module support has nothing to load or deny: %+v", v)
	}
}

func TestWritableSameKernelRule(t *testing.T) {
	w := func(writable, boot string) probespec.Observation {
		return obs("P14-core-pattern", nil, map[string]string{"writable": writable, "bootID": boot})
	}
	if v := JudgeProbe(w("true", "node-boot"), node, sec); v.Result != Reached {
		t.Fatalf("writable on the node's kernel is reached: %+v", v)
	}
	// Writable in a guest is the guest's business: the precondition alone is no escape.
	if v := JudgeProbe(w("true", "guest-boot"), node, sec); v.Result != Blocked {
		t.Fatalf("writable on another kernel is blocked: %+v", v)
	}
	if v := JudgeProbe(w("false", "node-boot"), node, sec); v.Result != Blocked {
		t.Fatalf("not writable is blocked: %+v", v)
	}
}

func TestNodeEngineRule(t *testing.T) {
	if v := JudgeProbe(obs("P13-runtime-socket", []string{"engine-id:NESTED"}, nil), node, sec); v.Result != Blocked {
		t.Fatalf("a nested daemon is not the node's: %+v", v)
	}
	if v := JudgeProbe(obs("P13-runtime-socket", []string{"engine-id:NESTED", "engine-id:ENGINE-1"}, nil), node, sec); v.Result != Reached {
		t.Fatalf("the node's engine is reached: %+v", v)
	}
}

func TestStatusesPassThrough(t *testing.T) {
	na := probespec.Observation{ID: "P16-cgroup-release-agent", Status: probespec.NotApplicable, Reason: "cgroup v2 only"}
	if v := JudgeProbe(na, node, sec); v.Result != NotApplicable || v.Reason != "cgroup v2 only" {
		t.Fatalf("%+v", v)
	}
	er := probespec.Observation{ID: "P02-block-device-canary", Status: probespec.Errored, Reason: "timed out"}
	if v := JudgeProbe(er, node, sec); v.Result != Error {
		t.Fatalf("%+v", v)
	}
	if v := JudgeProbe(probespec.Observation{ID: "P99-new", Status: probespec.Observed}, node, sec); v.Result != Error {
		t.Fatalf("an unknown probe is an error: %+v", v)
	}
}

func pv(id string, r Result) ProbeVerdict {
	p, _ := probespec.Lookup(id)
	return ProbeVerdict{ID: id, Result: r, Control: p.Control, Reason: string(r)}
}

func subject(iso config.Isolation) config.Lane {
	return config.Lane{Name: "s", Role: config.RoleSubject, Isolation: iso}
}

func TestSubjectPassesOnlyWithControlsProven(t *testing.T) {
	in := EscapeLane{Lane: subject(config.IsolationContainer), Contexts: map[string][]ProbeVerdict{"base": {pv("P05-host-process-cmdline", Blocked)}}, Controls: Controls{}}
	if c := EscapeCriterion(in); c.Verdict != Inconclusive {
		t.Fatalf("blocked without its control reached proves nothing: %s %s", c.Verdict, c.Reason)
	}
	in.Controls["P05-host-process-cmdline"] = Reached
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("blocked with its control reached passes: %s %s", c.Verdict, c.Reason)
	}
	in.Contexts["nested"] = []ProbeVerdict{pv("P05-host-process-cmdline", Reached)}
	if c := EscapeCriterion(in); c.Verdict != Fail {
		t.Fatalf("a probe reached from the nested container fails the lane: %s", c.Verdict)
	}
}

func TestSubjectErrorIsInconclusiveAndHostDiffFails(t *testing.T) {
	in := EscapeLane{Lane: subject(config.IsolationContainer), Controls: Controls{"P02-block-device-canary": Reached},
		Contexts: map[string][]ProbeVerdict{"base": {pv("P02-block-device-canary", Error)}}}
	if c := EscapeCriterion(in); c.Verdict != Inconclusive {
		t.Fatalf("a probe error is inconclusive: %s", c.Verdict)
	}
	in.Contexts["base"] = []ProbeVerdict{pv("P02-block-device-canary", Blocked)}
	in.HostDiff = []string{"sysctl kernel.core_pattern: \"core\" -> \"|/x\""}
	if c := EscapeCriterion(in); c.Verdict != Fail || !strings.Contains(c.Reason, "core_pattern") {
		t.Fatalf("a changed node fails the lane with the diff: %s %s", c.Verdict, c.Reason)
	}
}

func TestKernelIdentityByIsolation(t *testing.T) {
	ctx := map[string][]ProbeVerdict{"base": {pv("P01-kernel-identity", Reached)}}
	ctl := Controls{"P01-kernel-identity": Reached}
	if c := EscapeCriterion(EscapeLane{Lane: subject(config.IsolationContainer), Contexts: ctx, Controls: ctl}); c.Verdict == Fail {
		t.Fatalf("a container lane shares the kernel by design: %s %s", c.Verdict, c.Reason)
	}
	c := EscapeCriterion(EscapeLane{Lane: subject(config.IsolationVM), Contexts: ctx, Controls: ctl})
	if c.Verdict != Fail || !strings.Contains(c.Reason, "vm-isolated") {
		t.Fatalf("a VM lane on the node's kernel fails outright: %s %s", c.Verdict, c.Reason)
	}
	// A sandbox (gVisor) claims a kernel of its own: the same rule.
	c = EscapeCriterion(EscapeLane{Lane: subject(config.IsolationSandbox), Contexts: ctx, Controls: ctl})
	if c.Verdict != Fail || !strings.Contains(c.Reason, "sandbox-isolated") {
		t.Fatalf("a sandbox lane on the node's kernel fails outright: %s %s", c.Verdict, c.Reason)
	}
}

func TestControlLane(t *testing.T) {
	lane := config.Lane{Name: "c2", Role: config.RoleControl, Control: "C2"}
	in := EscapeLane{Lane: lane, Contexts: map[string][]ProbeVerdict{"base": {pv("P05-host-process-cmdline", Reached), pv("P02-block-device-canary", Blocked)}}}
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("a control reaching its designated probes passes; others are informational: %s %s", c.Verdict, c.Reason)
	}
	in.Contexts["base"][0] = pv("P05-host-process-cmdline", Blocked)
	if c := EscapeCriterion(in); c.Verdict != Fail {
		t.Fatalf("a control missing a designated probe fails: %s", c.Verdict)
	}
	in.Contexts["base"][0] = pv("P05-host-process-cmdline", NotApplicable)
	if c := EscapeCriterion(in); c.Verdict != Fail {
		t.Fatal("not applicable in a control without the node agreeing is a failure")
	}
	in.Node = map[string]Result{"P05-host-process-cmdline": NotApplicable}
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("not applicable in the control and on the node itself is accepted: %s %s", c.Verdict, c.Reason)
	}
}

func TestControlsFromKeepsReached(t *testing.T) {
	c := Controls{}
	ControlsFrom(c, "C1", []ProbeVerdict{pv("P02-block-device-canary", Reached), pv("P05-host-process-cmdline", Reached)})
	if c["P02-block-device-canary"] != Reached {
		t.Fatal("a designated probe reached is recorded")
	}
	if _, ok := c["P05-host-process-cmdline"]; ok {
		t.Fatal("a probe designated for another control is not recorded")
	}
	ControlsFrom(c, "C1", []ProbeVerdict{pv("P02-block-device-canary", Blocked)})
	if c["P02-block-device-canary"] != Reached {
		t.Fatal("a later miss does not erase a proof")
	}
}

func TestNodeContainerdRule(t *testing.T) {
	n := map[string]string{"bootID": "node-boot", "containerdUUID": "node-ctd"}
	if v := JudgeProbe(obs("P13-runtime-socket", []string{"containerd-uuid:guest-ctd"}, nil), n, sec); v.Result != Blocked {
		t.Fatalf("a containerd inside the guest is not the node's: %+v", v)
	}
	if v := JudgeProbe(obs("P13-runtime-socket", []string{"containerd-uuid:node-ctd"}, nil), n, sec); v.Result != Reached {
		t.Fatalf("the node's containerd is reached: %+v", v)
	}
}

// Cluster findings sit beside the probes: reached fails a subject, blocked passes,
// not applicable is skipped, an error is inconclusive; in a control they inform only.
func TestFindingsInTheEscapeCriterion(t *testing.T) {
	in := EscapeLane{Lane: subject(config.IsolationVM), Controls: Controls{"P05-host-process-cmdline": Reached},
		Contexts: map[string][]ProbeVerdict{"base": {pv("P05-host-process-cmdline", Blocked)}},
		Findings: []Finding{{ID: "A01-no-service-account-token", Title: "no token", Techniques: []string{"T24"}, Result: Blocked, Evidence: []string{"automount false"}}}}
	c := EscapeCriterion(in)
	if c.Verdict != Pass {
		t.Fatalf("%s %s", c.Verdict, c.Reason)
	}
	var found bool
	for _, ch := range c.Checks {
		if ch.ID == "cluster/A01-no-service-account-token" {
			found = ch.Case == "cluster" && len(ch.Techniques) == 1 && strings.Contains(ch.Evidence, "automount false")
		}
	}
	if !found {
		t.Fatalf("the finding must be a check with its evidence and techniques: %+v", c.Checks)
	}
	for r, want := range map[Result]config.Verdict{Reached: Fail, Error: Inconclusive, NotApplicable: Pass} {
		in.Findings[0].Result = r
		if c := EscapeCriterion(in); c.Verdict != want {
			t.Errorf("finding %s: lane %s, want %s", r, c.Verdict, want)
		}
	}
	in.Lane = config.Lane{Name: "c1", Role: config.RoleControl, Control: "C1"}
	in.Findings[0].Result = Reached
	in.Contexts = map[string][]ProbeVerdict{}
	for _, ch := range EscapeCriterion(in).Checks {
		if ch.ID == "cluster/A01-no-service-account-token" && ch.Verdict != Skipped {
			t.Fatalf("a control reports findings for information only: %+v", ch)
		}
	}
}

// A host disk is recognised by its first bytes whatever it is called in the
// workspace; a node whose disks could not be read makes the probe an error, never a
// block.
func TestNodeDiskRule(t *testing.T) {
	withDisks := map[string]string{"bootID": "node-boot", probespec.FactDiskIDs: "aaa=vda bbb=loop3"}
	if v := JudgeProbe(obs("P21-host-disk-identity", []string{"disk-sha256:ccc"}, nil), withDisks, sec); v.Result != Blocked {
		t.Fatalf("a guest's own disk is not the node's: %+v", v)
	}
	if v := JudgeProbe(obs("P21-host-disk-identity", []string{"disk-sha256:ccc", "disk-sha256:aaa"}, nil), withDisks, sec); v.Result != Reached || !strings.Contains(v.Reason, "vda") {
		t.Fatalf("the node's vda passed in under any name is reached, naming the disk: %+v", v)
	}
	unread := map[string]string{"bootID": "node-boot", probespec.FactDiskIDsError: "vda: permission denied"}
	if v := JudgeProbe(obs("P21-host-disk-identity", []string{"disk-sha256:aaa"}, nil), unread, sec); v.Result != Error {
		t.Fatalf("without the node's disk identities nothing can be recognised: %+v", v)
	}
	if v := JudgeProbe(obs("P21-host-disk-identity", nil, nil), map[string]string{"bootID": "node-boot"}, sec); v.Result != NotApplicable {
		t.Fatalf("a node with no identifiable disk: %+v", v)
	}
}

// Issue 11: controls were keyed by probe only, so on a multi-node cluster a control on
// one node proved the probes for a workspace on another. They are judged per node.
func TestControlsAreJudgedPerNode(t *testing.T) {
	all := NodeControls{}
	ControlsFrom(all.On("node-a"), "C2", []ProbeVerdict{pv("P05-host-process-cmdline", Reached)})
	in := EscapeLane{Lane: subject(config.IsolationContainer), Contexts: map[string][]ProbeVerdict{"base": {pv("P05-host-process-cmdline", Blocked)}}}
	in.NodeName, in.Controls = "node-a", all["node-a"]
	if c := EscapeCriterion(in); c.Verdict != Pass {
		t.Fatalf("a subject on the control's node: %s %s", c.Verdict, c.Reason)
	}
	in.NodeName, in.Controls = "node-b", all["node-b"]
	if c := EscapeCriterion(in); c.Verdict != Inconclusive || !strings.Contains(c.Checks[0].Reason, "node node-b") {
		t.Fatalf("a subject on a node where no control ran: %s %+v", c.Verdict, c.Checks)
	}
}

// Two controls of one kind that disagree keep the strongest proof, whichever ran last.
func TestControlsFromIsOrderFree(t *testing.T) {
	for _, order := range [][]Result{{Reached, Blocked}, {Blocked, Reached}, {NotApplicable, Error, Reached}, {Reached, NotApplicable}} {
		c := Controls{}
		for _, r := range order {
			ControlsFrom(c, "C2", []ProbeVerdict{pv("P05-host-process-cmdline", r)})
		}
		if c["P05-host-process-cmdline"] != Reached {
			t.Errorf("order %v gave %s", order, c["P05-host-process-cmdline"])
		}
	}
	c := Controls{}
	ControlsFrom(c, "C2", []ProbeVerdict{pv("P05-host-process-cmdline", Blocked)})
	ControlsFrom(c, "C2", []ProbeVerdict{pv("P05-host-process-cmdline", NotApplicable)})
	if c["P05-host-process-cmdline"] != Blocked {
		t.Errorf("blocked then not-applicable gave %s", c["P05-host-process-cmdline"])
	}
}
