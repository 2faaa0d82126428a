// Package verdict decides verdicts: checks into criteria by a stated rule, and escape
// observations against secrets and node facts. It is pure: no targets, no Ginkgo, no
// I/O, so every rule is unit-tested on its own.
package verdict

import (
	"fmt"
	"sort"
	"strings"

	"kwc.dev/kwc/internal/config"
)

// Verdict values, shared with the config's expectations.
const (
	Pass         = config.VerdictPass
	Fail         = config.VerdictFail
	Skipped      = config.VerdictSkipped
	Inconclusive = config.VerdictInconclusive
)

// Check is one measured thing: a command (or probe) and what it showed.
type Check struct {
	ID      string         `json:"id"`
	Tool    string         `json:"tool,omitempty"`
	Case    string         `json:"case,omitempty"`
	Verdict config.Verdict `json:"verdict"`
	// Result is an escape probe's own outcome (reached, blocked, ...), when a probe.
	Result string `json:"result,omitempty"`
	// Reason is one line saying why, for every verdict but pass.
	Reason          string   `json:"reason,omitempty"`
	Evidence        string   `json:"evidence"`
	DurationSeconds float64  `json:"durationSeconds"`
	Techniques      []string `json:"techniques,omitempty"`
	// Artifact is the file (relative to the report folder) with the full evidence.
	Artifact string `json:"artifact,omitempty"`
}

// Criterion is a criterion's verdict for one lane, with the rule that decided it.
type Criterion struct {
	Verdict config.Verdict            `json:"verdict"`
	Reason  string                    `json:"reason,omitempty"`
	Rule    string                    `json:"rule"`
	Tools   map[string]config.Verdict `json:"tools,omitempty"`
	Checks  []Check                   `json:"checks"`
}

// RuleAll is the rule of criteria without tools (sudo).
const RuleAll = "pass when every check passes; fail when any fails; skipped checks are listed with their reason and do not count"

// AllChecks decides a criterion whose checks must all pass.
func AllChecks(checks []Check) Criterion {
	c := Criterion{Rule: RuleAll, Checks: checks}
	c.Verdict, c.Reason = combine(checks)
	return c
}

// combine: any fail wins, then inconclusive, then pass; all skipped is skipped.
func combine(checks []Check) (config.Verdict, string) {
	var fails, inconcl, passes, skips []string
	for _, ch := range checks {
		label := ch.ID
		if ch.Reason != "" {
			label += ": " + ch.Reason
		}
		switch ch.Verdict {
		case Fail:
			fails = append(fails, label)
		case Inconclusive:
			inconcl = append(inconcl, label)
		case Pass:
			passes = append(passes, label)
		default:
			skips = append(skips, label)
		}
	}
	switch {
	case len(fails) > 0:
		return Fail, first(fails)
	case len(inconcl) > 0:
		return Inconclusive, first(inconcl)
	case len(passes) > 0:
		return Pass, ""
	case len(skips) > 0:
		return Skipped, first(skips)
	}
	return Inconclusive, "no check was run"
}

func first(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return fmt.Sprintf("%s (and %d more)", s[0], len(s)-1)
}

// ToolRule states a tool policy in words for the report.
func ToolRule(p config.ToolPolicy) string {
	if p.Require == "all" {
		return fmt.Sprintf("pass when every one of %s passes every case", strings.Join(p.Tools, ", "))
	}
	return fmt.Sprintf("pass when at least one of %s passes every case; each tool's own verdict is listed", strings.Join(p.Tools, ", "))
}

// ByTool decides a tool-based criterion (build, run) under policy p.
func ByTool(checks []Check, p config.ToolPolicy) Criterion {
	c := Criterion{Rule: ToolRule(p), Checks: checks, Tools: map[string]config.Verdict{}}
	byTool := map[string][]Check{}
	for _, ch := range checks {
		byTool[ch.Tool] = append(byTool[ch.Tool], ch)
	}
	reasons := map[string]string{}
	for _, t := range p.Tools {
		v, r := combine(byTool[t])
		if len(byTool[t]) == 0 {
			v, r = Skipped, "not run"
		}
		c.Tools[t], reasons[t] = v, r
	}
	var passing, failing, unsure []string
	for _, t := range p.Tools {
		switch c.Tools[t] {
		case Pass:
			passing = append(passing, t)
		case Fail:
			failing = append(failing, t+": "+reasons[t])
		default:
			unsure = append(unsure, t+": "+reasons[t])
		}
	}
	sort.Strings(passing)
	switch {
	case p.Require == "all" && len(failing) > 0:
		c.Verdict, c.Reason = Fail, strings.Join(failing, "; ")
	case p.Require == "all" && len(unsure) > 0:
		c.Verdict, c.Reason = Inconclusive, strings.Join(unsure, "; ")
	case p.Require == "all":
		c.Verdict = Pass
	case len(passing) > 0:
		c.Verdict = Pass
		if len(failing)+len(unsure) > 0 {
			c.Reason = "passes with " + strings.Join(passing, ", ") + "; " + strings.Join(append(failing, unsure...), "; ")
		}
	case len(failing) > 0 && len(unsure) == 0:
		c.Verdict, c.Reason = Fail, strings.Join(failing, "; ")
	case len(unsure) > 0 && len(failing) == 0 && allSkipped(c.Tools):
		c.Verdict, c.Reason = Skipped, strings.Join(unsure, "; ")
	default:
		// No tool passed and at least one could not be judged: it might have passed.
		c.Verdict, c.Reason = Inconclusive, strings.Join(append(failing, unsure...), "; ")
	}
	return c
}

func allSkipped(m map[string]config.Verdict) bool {
	for _, v := range m {
		if v != Skipped {
			return false
		}
	}
	return true
}

// Meets reports whether a criterion verdict meets a lane's expectation; an absent
// expectation is met by any conclusive verdict (pass or fail).
func Meets(got config.Verdict, want config.Verdict, expected bool) bool {
	if !expected {
		return got == Pass || got == Fail
	}
	return got == want
}
