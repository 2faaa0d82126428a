package verdict

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/probespec"
)

// Result is an escape probe's outcome, decided by the harness.
type Result string

const (
	Reached       Result = "reached"
	Blocked       Result = "blocked"
	NotApplicable Result = "not-applicable"
	Error         Result = "error"
)

// Secret is what the node agent planted: every canary holds Marker + ":" + Token.
type Secret struct {
	Marker string
	Token  string
}

// ProbeVerdict is one probe's outcome in one context.
type ProbeVerdict struct {
	ID         string   `json:"id"`
	Result     Result   `json:"result"`
	Reason     string   `json:"reason"`
	Techniques []string `json:"techniques"`
	Control    string   `json:"control"`
	Evidence   string   `json:"evidence"`
	DurationMS int64    `json:"durationMs"`
}

// JudgeProbe decides one observation. node holds the node's facts (bootID,
// modulesHash, engineID, ...). Evidence is redacted: the secret never leaves.
func JudgeProbe(o probespec.Observation, node map[string]string, sec Secret) ProbeVerdict {
	p, known := probespec.Lookup(o.ID)
	v := ProbeVerdict{ID: o.ID, Techniques: p.Techniques, Control: p.Control, DurationMS: o.DurationMS,
		Evidence: redact(strings.Join(o.Evidence, "\n"), sec)}
	if !known {
		v.Result, v.Reason = Error, "unknown probe id (harness and probe binary differ?)"
		return v
	}
	switch o.Status {
	case probespec.Errored:
		v.Result, v.Reason = Error, o.Reason
		return v
	case probespec.NotApplicable:
		v.Result, v.Reason = NotApplicable, o.Reason
		return v
	}
	sameKernel, kernelWhy, kernelErr := SameKernel(o.Facts, node)
	// Without the node's kernel identity "another kernel" cannot be told from "the
	// node's": a kernel-rule probe then proves nothing either way.
	kernelRule := p.Rule == probespec.RuleSameKernel || (p.Rule == probespec.RuleWritableSameKernel && o.Facts["writable"] == "true")
	if kernelRule && node["bootID"] == "" {
		v.Result, v.Reason = Error, "the node's kernel identity (boot_id) is unknown, so the workspace's kernel cannot be compared with it"
		return v
	}
	if kernelRule && kernelErr != "" && o.Facts["bootID"] != "" {
		v.Result, v.Reason = Error, kernelErr
		return v
	}
	switch p.Rule {
	case probespec.RuleSecret:
		for _, c := range o.Candidates {
			if sec.Token != "" && strings.Contains(c, sec.Token) {
				v.Result, v.Reason = Reached, "read the node's secret: "+redact(c, sec)
				return v
			}
		}
		v.Result, v.Reason = Blocked, fmt.Sprintf("%d candidates read, none holds the secret", len(o.Candidates))
	case probespec.RuleChallenge:
		for _, c := range o.Candidates {
			parts := strings.SplitN(c, ":", 3)
			if len(parts) == 3 && parts[0] == "challenge" && hmac.Equal([]byte(parts[2]), []byte(answer(sec.Token, parts[1]))) {
				v.Result, v.Reason = Reached, "a listener on the node answered the challenge with the secret's HMAC"
				return v
			}
		}
		v.Result, v.Reason = Blocked, "no listener that knows the secret answered"
	case probespec.RuleSameKernel:
		if o.Facts["bootID"] == "" {
			v.Result, v.Reason = Error, "no boot_id observed"
			return v
		}
		if !sameKernel {
			v.Result, v.Reason = Blocked, "a different kernel: "+kernelWhy
			return v
		}
		if o.ID == "P18-kernel-modules" {
			if o.Facts["modulesHash"] != node["modulesHash"] {
				v.Result, v.Reason = Blocked, "module list differs from the node's"
				return v
			}
			switch o.Facts["finitModuleErrno"] {
			case "EPERM":
				v.Result, v.Reason = Blocked, "the node's kernel, but module loading is denied (EPERM)"
				return v
			case "ENOSYS":
				// The kernel has no module support: nobody can load one, so there is
				// nothing to deny (a runtime's seccomp would have said EPERM first).
				v.Result, v.Reason = NotApplicable, "the node's kernel has no module support (finit_module: ENOSYS)"
				return v
			}
			v.Result, v.Reason = Reached, "the node's kernel and module list, and module loading is not denied ("+o.Facts["finitModuleErrno"]+")"
			return v
		}
		v.Result, v.Reason = Reached, "the node's kernel: "+kernelWhy
	case probespec.RuleWritableSameKernel:
		switch {
		case o.Facts["writable"] != "true":
			v.Result, v.Reason = Blocked, "not writable here"
		case o.Facts["bootID"] == "":
			v.Result, v.Reason = Error, "writable, and no boot_id was observed: the kernel it belongs to is unknown"
		case !sameKernel:
			v.Result, v.Reason = Blocked, "writable, but it belongs to another kernel ("+kernelWhy+")"
		default:
			v.Result, v.Reason = Reached, "writable ("+o.Facts["writableAt"]+"), and the kernel is the node's ("+kernelWhy+"): a write would change the node"
		}
	case probespec.RuleNodeEngine:
		for _, c := range o.Candidates {
			if id, ok := strings.CutPrefix(c, "engine-id:"); ok && node["engineID"] != "" && id == node["engineID"] {
				v.Result, v.Reason = Reached, "a runtime socket answered with the node engine's identity"
				return v
			}
			if id, ok := strings.CutPrefix(c, "containerd-uuid:"); ok && node["containerdUUID"] != "" && id == node["containerdUUID"] {
				v.Result, v.Reason = Reached, "a containerd socket answered with the node containerd's identity"
				return v
			}
		}
		v.Result, v.Reason = Blocked, fmt.Sprintf("%d engines answered, none is the node's", len(o.Candidates))
	case probespec.RuleNodeDisk:
		ids := map[string]string{}
		for _, f := range strings.Fields(node[probespec.FactDiskIDs]) {
			if h, name, ok := strings.Cut(f, "="); ok {
				ids[h] = name
			}
		}
		for _, c := range o.Candidates {
			if h, ok := strings.CutPrefix(c, probespec.DiskIDCandidatePrefix); ok && ids[h] != "" {
				v.Result, v.Reason = Reached, "a block device in the workspace starts with the same bytes as the node's "+ids[h]
				return v
			}
		}
		switch {
		case len(ids) == 0 && node[probespec.FactDiskIDsError] != "":
			v.Result, v.Reason = Error, "the node's disks could not be read ("+node[probespec.FactDiskIDsError]+"), so a host disk cannot be recognised"
		case len(ids) == 0:
			v.Result, v.Reason = NotApplicable, "the node has no disk whose first bytes identify it"
		default:
			v.Result, v.Reason = Blocked, fmt.Sprintf("%d block devices read, none starts like one of the node's %d disks", len(o.Candidates), len(ids))
		}
	default:
		v.Result, v.Reason = Error, "no rule for "+string(p.Rule)
	}
	return v
}

// bootTimeSlack is how far two boot times read from sysinfo(2)'s whole-second uptime
// may differ and still be one boot of one kernel.
const bootTimeSlack = 3

// SameKernel says whether the facts a probe read are the node's kernel, and why. A
// differing boot_id alone is not enough: a bind mount can mask the file, so uname(2)
// and the boot time from sysinfo(2), which no file stands in for, are compared too.
// errReason is set when the facts cannot tell (identical uname, no boot time).
func SameKernel(seen, node map[string]string) (same bool, why, errReason string) {
	bid, nbid := seen[probespec.FactBootID], node[probespec.FactBootID]
	if bid != "" && bid == nbid {
		return true, "boot_id equals the node's", ""
	}
	un, nun := seen[probespec.FactUname], node[probespec.FactUname]
	bt, berr := strconv.ParseInt(seen[probespec.FactBootTime], 10, 64)
	nbt, nberr := strconv.ParseInt(node[probespec.FactBootTime], 10, 64)
	switch {
	case un != "" && un == nun && berr == nil && nberr == nil && abs(bt-nbt) <= bootTimeSlack:
		return true, fmt.Sprintf("boot_id %q is not the node's, but uname(2) is the node's and the kernel booted when the node's did (%d, node %d): the boot_id is masked", bid, bt, nbt), ""
	case un != "" && un == nun && (berr != nil || nberr != nil):
		return false, "", fmt.Sprintf("boot_id differs, but uname(2) is byte for byte the node's and no boot time was read to tell them apart: the verdict would rest on boot_id alone")
	case un != "" && nun != "" && un != nun:
		return false, fmt.Sprintf("boot_id and uname(2) differ from the node's (%q)", un), ""
	case berr == nil && nberr == nil:
		return false, fmt.Sprintf("boot_id differs and the kernel booted at %d, the node's at %d", bt, nbt), ""
	}
	return false, "boot_id " + bid + " is not the node's", ""
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func answer(token, nonce string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

func redact(s string, sec Secret) string {
	if sec.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, sec.Token, "<secret>")
}

// Controls records, per probe, its result in its designated control lane: reached
// proves the probe works; not-applicable says the primitive does not exist on this
// node at all.
type Controls map[string]Result

// ResultsByID indexes probe verdicts by probe.
func ResultsByID(vs []ProbeVerdict) map[string]Result {
	out := map[string]Result{}
	for _, v := range vs {
		out[v.ID] = v.Result
	}
	return out
}

// ControlsFrom reads a control lane's probe verdicts. Two controls of one kind that
// disagree keep the strongest proof (reached > blocked > error > not-applicable), so
// the order lanes ran in never changes what a control proved.
func ControlsFrom(into Controls, control string, vs []ProbeVerdict) {
	for _, v := range vs {
		if v.Control != control {
			continue
		}
		if have, ok := into[v.ID]; !ok || controlRank[v.Result] > controlRank[have] {
			into[v.ID] = v.Result
		}
	}
}

var controlRank = map[Result]int{NotApplicable: 1, Error: 2, Blocked: 3, Reached: 4}

// NodeControls are the controls' proofs per node: a probe reached by a control on one
// node proves nothing about a workspace on another (a node without the loop canary, a
// node whose kernel differs).
type NodeControls map[string]Controls

// On returns the controls of node, made on first use.
func (n NodeControls) On(node string) Controls {
	if n[node] == nil {
		n[node] = Controls{}
	}
	return n[node]
}

// EscapeLane is what the escape criterion of one lane is decided from.
type EscapeLane struct {
	Lane config.Lane
	// Contexts maps a context (base, nested) to its probe verdicts.
	Contexts map[string][]ProbeVerdict
	// HostDiff is what changed on the node while the lane ran.
	HostDiff []string
	// Controls says which probes reached their control in this run, on the lane's
	// node; NodeName names it ("" on the docker target: the harness's own host).
	Controls Controls
	NodeName string
	// Node is the probe set's result on the node itself: a probe not applicable there
	// cannot be reached anywhere on this node.
	Node map[string]Result
	// Findings are the escape paths that do not cross the kernel (API, kubelet, Kata's
	// configuration), judged by their own rules; their controls are the misconfigured
	// variants kwc's tests run them against.
	Findings []Finding
}

// RuleEscapeSubject and RuleEscapeControl are stated in the report.
const (
	RuleEscapeSubject = "pass when every probe is blocked or not applicable, every probe was reached in its control lane in this run, every cluster finding (API, kubelet, Kata configuration) is blocked or not applicable, and the node is unchanged; a reached probe or finding fails; a probe whose control did not reach it is inconclusive; a VM- or sandbox-isolated lane with the node's kernel fails"
	RuleEscapeControl = "pass when every probe designated for this control is reached here and the node is unchanged: the control proves the probes can see what they look for"
)

// EscapeCriterion decides a lane's escape criterion.
func EscapeCriterion(in EscapeLane) Criterion {
	var checks []Check
	ctxs := make([]string, 0, len(in.Contexts))
	for c := range in.Contexts {
		ctxs = append(ctxs, c)
	}
	sort.Strings(ctxs)
	control := in.Lane.Role == config.RoleControl
	vmBreach := ""
	for _, ctx := range ctxs {
		for _, pv := range in.Contexts[ctx] {
			ch := Check{ID: ctx + "/" + pv.ID, Case: ctx, Evidence: pv.Evidence, Techniques: pv.Techniques,
				DurationSeconds: float64(pv.DurationMS) / 1000, Result: string(pv.Result)}
			switch {
			case control && pv.Control == in.Lane.Control && ctx == "base":
				switch {
				case pv.Result == Reached:
					ch.Verdict = Pass
				case pv.Result == NotApplicable && in.Node[pv.ID] == NotApplicable:
					ch.Verdict, ch.Reason = Pass, "not applicable on this node, as on the node itself: "+pv.Reason
				default:
					ch.Verdict = Fail
					ch.Reason = fmt.Sprintf("%s here, but %s must reach it (%s): the probe or the environment is broken", pv.Result, in.Lane.Control, pv.Reason)
				}
			case control:
				ch.Verdict, ch.Reason = Skipped, fmt.Sprintf("informational in control %s (%s): %s", in.Lane.Control, pv.Result, pv.Reason)
			case pv.ID == "P01-kernel-identity" && in.Lane.Isolation == config.IsolationContainer:
				// Sharing the kernel is what container isolation is; it is not itself a path
				// to the node. The probes below judge the paths.
				ch.Verdict, ch.Reason = Skipped, "informational: the lane's isolation is container, so it shares the node's kernel by design ("+string(pv.Result)+")"
			case pv.Result == Reached:
				ch.Verdict, ch.Reason = Fail, pv.Reason
				if pv.ID == "P01-kernel-identity" {
					vmBreach = ctx + ": " + pv.Reason
				}
			case pv.Result == Error:
				ch.Verdict, ch.Reason = Inconclusive, "probe error: "+pv.Reason
			case in.Controls[pv.ID] == NotApplicable && in.Node[pv.ID] == NotApplicable && pv.Result != Reached:
				ch.Verdict, ch.Reason = Skipped, "not applicable on this node: neither the node itself nor its control "+pv.Control+" has such a primitive ("+pv.Reason+")"
			case in.Controls[pv.ID] == NotApplicable:
				// A control that found no primitive the node has is a broken control, not
				// an absent primitive: it proves nothing.
				ch.Verdict, ch.Reason = Inconclusive, fmt.Sprintf("%s, but its control %s found the primitive missing while the node has it (%s): the control proves nothing", pv.Result, pv.Control, in.Node[pv.ID])
			case in.Controls == nil && in.NodeName != "":
				ch.Verdict, ch.Reason = Inconclusive, fmt.Sprintf("%s, but no control lane ran on node %s, where this lane ran, so this proves nothing", pv.Result, in.NodeName)
			case in.Controls[pv.ID] != Reached:
				ch.Verdict, ch.Reason = Inconclusive, fmt.Sprintf("%s, but the probe was not reached in its control %s in this run%s, so this proves nothing", pv.Result, pv.Control, onNode(in.NodeName))
			case pv.Result == NotApplicable:
				ch.Verdict, ch.Reason = Skipped, "not applicable: "+pv.Reason
			default:
				ch.Verdict, ch.Reason = Pass, pv.Reason
			}
			checks = append(checks, ch)
		}
	}
	for _, f := range in.Findings {
		ch := Check{ID: "cluster/" + f.ID, Case: "cluster", Evidence: f.Title, Techniques: f.Techniques, Result: string(f.Result)}
		if len(f.Evidence) > 0 {
			ch.Evidence += ":\n" + strings.Join(f.Evidence, "\n")
		}
		switch {
		case control:
			ch.Verdict, ch.Reason = Skipped, fmt.Sprintf("informational in control %s (%s): %s", in.Lane.Control, f.Result, f.Reason)
		case f.Result == Reached:
			ch.Verdict, ch.Reason = Fail, f.Reason
		case f.Result == Blocked:
			ch.Verdict = Pass
		case f.Result == NotApplicable:
			ch.Verdict, ch.Reason = Skipped, "not applicable: "+f.Reason
		default:
			ch.Verdict, ch.Reason = Inconclusive, string(f.Result)+": "+f.Reason
		}
		checks = append(checks, ch)
	}
	sweep := Check{ID: "host-state-unchanged", Case: "node", Evidence: "node state compared before and after the lane's probes"}
	if len(in.HostDiff) == 0 {
		sweep.Verdict = Pass
	} else {
		sweep.Verdict, sweep.Reason = Fail, "node state changed: "+strings.Join(in.HostDiff, "; ")
		sweep.Evidence += ":\n" + strings.Join(in.HostDiff, "\n")
	}
	checks = append(checks, sweep)
	c := AllChecks(checks)
	// A pass needs positive evidence: at least one probe decided blocked. A lane
	// whose every probe was skipped has shown nothing about its boundary.
	if !control && c.Verdict == Pass && !anyProbePassed(checks) {
		c.Verdict, c.Reason = Inconclusive, "no probe was decided in this lane (every one skipped or not applicable): nothing shows the workspace was looked at"
	}
	c.Rule = RuleEscapeSubject
	if control {
		c.Rule = RuleEscapeControl
	}
	if vmBreach != "" {
		c.Verdict, c.Reason = Fail, fmt.Sprintf("the lane is declared %s-isolated but runs on the node's kernel (%s)", in.Lane.Isolation, vmBreach)
	}
	return c
}

func onNode(n string) string {
	if n == "" {
		return ""
	}
	return " on node " + n
}

func anyProbePassed(checks []Check) bool {
	for _, ch := range checks {
		if ch.Verdict == Pass && ch.Case != "node" && ch.Case != "cluster" {
			return true
		}
	}
	return false
}

// JudgeAll decides every observation of a probe result, failing closed where a
// "blocked" would prove nothing: a probe that needed root and ran without it, and a
// probe whose canary the node agent could not plant, are errors.
func JudgeAll(res probespec.Result, node map[string]string, sec Secret) []ProbeVerdict {
	out := make([]ProbeVerdict, 0, len(res.Observations))
	for _, o := range res.Observations {
		v := JudgeProbe(o, node, sec)
		p, _ := probespec.Lookup(o.ID)
		if v.Result == Blocked && p.Root && res.Context["uid"] != "0" {
			v.Result, v.Reason = Error, fmt.Sprintf("needs root but ran as uid %q (did sudo -n fail?): blocked as a user proves nothing", res.Context["uid"])
		}
		if v.Result == Blocked {
			for _, c := range probeCanaries[o.ID] {
				if why := node[probespec.CanaryMissingFact(c)]; why != "" {
					v.Result, v.Reason = Error, "its "+c+" canary was not planted on the node ("+why+"): nothing was there to reach"
				}
			}
		}
		if v.Result == Blocked {
			if cut := boundsCut(o.Facts); cut != "" {
				v.Reason += " (looked within the discovery bounds, which cut: " + cut + ")"
			}
		}
		out = append(out, v)
	}
	return out
}

// boundsCut gathers what discovery's bounds left unseen, from a probe's facts.
func boundsCut(facts map[string]string) string {
	var cuts []string
	for _, k := range slices.Sorted(maps.Keys(facts)) {
		if strings.HasSuffix(k, "WalkCut") || strings.HasSuffix(k, "AskCut") || k == "sysvCut" {
			cuts = append(cuts, facts[k])
		}
	}
	return strings.Join(cuts, "; ")
}

// probeCanaries names the node agent's canaries each probe looks for.
var probeCanaries = map[string][]string{
	"P02-block-device-canary":  {probespec.CanaryLoop},
	"P03-kernel-log":           {probespec.CanaryKmsg},
	"P04-mounted-host-file":    {probespec.CanaryFile, probespec.CanaryFolderFiles},
	"P05-host-process-cmdline": {probespec.CanaryProcess},
	"P06-ptrace-environ":       {probespec.CanaryProcess},
	"P07-proc-root-file":       {probespec.CanaryProcess, probespec.CanaryFile},
	"P08-loopback-challenge":   {probespec.CanaryLoopback},
	"P09-abstract-socket":      {probespec.CanaryAbstract},
	"P10-shm-file":             {probespec.CanaryShmFile},
	"P11-sysv-shm":             {probespec.CanarySysvShm},
	"P12-keyring":              {probespec.CanaryKey},
	"P19-open-by-handle":       {probespec.CanaryFile},
	"P20-mknod-loop-canary":    {probespec.CanaryLoop},
}

// CatalogAsNotApplicable marks every probe not applicable, for a context that cannot
// exist in a lane (no privileged nested container, say).
func CatalogAsNotApplicable(reason string) []ProbeVerdict {
	out := make([]ProbeVerdict, 0, len(probespec.Catalog))
	for _, p := range probespec.Catalog {
		out = append(out, ProbeVerdict{ID: p.ID, Result: NotApplicable, Reason: reason, Techniques: p.Techniques, Control: p.Control})
	}
	return out
}

// Finding is a check that is not a probe: a configuration or API question the
// harness asks about the node or the cluster, with the same outcomes as a probe.
type Finding struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Techniques []string `json:"techniques"`
	Result     Result   `json:"result"`
	Reason     string   `json:"reason"`
	Evidence   []string `json:"evidence,omitempty"`
}
