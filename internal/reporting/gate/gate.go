// Package gate turns a conformance report into a release decision: a policy says
// which lanes must meet which criteria, a baseline says what got worse. It reads
// reports only; it never runs anything.
package gate

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/reporting/report"
)

// Policy is a gate policy file (apiVersion kwc.dev/v1alpha1, kind GatePolicy).
type Policy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Rules      []Rule `json:"rules"`
}

// Rule requires every lane its selector picks to meet criteria with verdict.
type Rule struct {
	Name     string   `json:"name"`
	Lanes    Selector `json:"lanes"`
	Criteria []string `json:"criteria"`
	// Verdict is what each criterion must be (default pass).
	Verdict config.Verdict `json:"verdict,omitempty"`
	// MinLanes is how many lanes the selector must pick: a release gate that requires
	// Kata lanes fails when the run had none, instead of passing vacuously. Unset
	// means 1; a rule that may pick no lane says minLanes: 0.
	MinLanes *int `json:"minLanes,omitempty"`
	// ReasonContains, with verdict fail, says why the lane must fail: a negative
	// control (a decoy runtime) must be caught for the right reason, not any.
	ReasonContains string `json:"reasonContains,omitempty"`
}

// Selector picks lanes; every field set must match.
type Selector struct {
	Names     []string         `json:"names,omitempty"`
	Role      config.Role      `json:"role,omitempty"`
	Isolation config.Isolation `json:"isolation,omitempty"`
	Runtimes  []string         `json:"runtimes,omitempty"`
}

// minLanes is MinLanes after decoding filled its default.
func (r Rule) minLanes() int {
	if r.MinLanes == nil {
		return 1
	}
	return *r.MinLanes
}

// validate rejects selector values no lane can have: a typo would otherwise pick no
// lane and the rule would pass vacuously.
func (s Selector) validate() error {
	var errs []error
	if s.Role != "" && s.Role != config.RoleSubject && s.Role != config.RoleControl {
		errs = append(errs, fmt.Errorf("role %q: use subject or control", s.Role))
	}
	if s.Isolation != "" && !slices.Contains(config.Isolations, s.Isolation) {
		errs = append(errs, fmt.Errorf("isolation %q: use one of %v", s.Isolation, config.Isolations))
	}
	for _, n := range s.Names {
		if !config.ValidLaneName(n) {
			errs = append(errs, fmt.Errorf("names: %q is not a lane name (lowercase letters, digits and dashes)", n))
		}
	}
	for _, r := range s.Runtimes {
		if strings.TrimSpace(r) == "" || r != strings.TrimSpace(r) {
			errs = append(errs, fmt.Errorf("runtimes: %q is not a runtime name", r))
		}
	}
	return errors.Join(errs...)
}

func (s Selector) match(l *report.Lane) bool {
	return (len(s.Names) == 0 || slices.Contains(s.Names, l.Name)) &&
		(s.Role == "" || s.Role == l.Role) &&
		(s.Isolation == "" || s.Isolation == l.Isolation) &&
		(len(s.Runtimes) == 0 || slices.Contains(s.Runtimes, l.Runtime))
}

func (s Selector) String() string {
	var parts []string
	if len(s.Names) > 0 {
		parts = append(parts, "names "+strings.Join(s.Names, ","))
	}
	if s.Role != "" {
		parts = append(parts, "role "+string(s.Role))
	}
	if s.Isolation != "" {
		parts = append(parts, "isolation "+string(s.Isolation))
	}
	if len(s.Runtimes) > 0 {
		parts = append(parts, "runtime "+strings.Join(s.Runtimes, ","))
	}
	if len(parts) == 0 {
		return "every lane"
	}
	return strings.Join(parts, ", ")
}

// LoadPolicy reads and validates a policy file strictly.
func LoadPolicy(path string) (Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("reading policy: %w", err)
	}
	return DecodePolicy(b, path)
}

// DecodePolicy decodes and validates a policy.
func DecodePolicy(b []byte, source string) (Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return Policy{}, fmt.Errorf("decoding policy %s: %w", source, err)
	}
	var errs []error
	if p.APIVersion != "kwc.dev/v1alpha1" || p.Kind != "GatePolicy" {
		errs = append(errs, fmt.Errorf("apiVersion %q kind %q: want kwc.dev/v1alpha1 GatePolicy", p.APIVersion, p.Kind))
	}
	if len(p.Rules) == 0 {
		errs = append(errs, errors.New("rules: none; a policy with no rule gates nothing"))
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Verdict == "" {
			r.Verdict = config.VerdictPass
		}
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("rules[%d]: name it; the gate's reasons quote it", i))
		}
		if r.MinLanes == nil {
			one := 1
			r.MinLanes = &one
		} else if *r.MinLanes < 0 {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): minLanes %d: must be 0 or more", i, r.Name, *r.MinLanes))
		}
		if !slices.Contains([]config.Verdict{config.VerdictPass, config.VerdictFail, config.VerdictSkipped, config.VerdictInconclusive}, r.Verdict) {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): verdict %q: use pass, fail, skipped or inconclusive", i, r.Name, r.Verdict))
		}
		if r.ReasonContains != "" && r.Verdict != config.VerdictFail {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): reasonContains goes with verdict: fail", i, r.Name))
		}
		if err := r.Lanes.validate(); err != nil {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): lanes: %w", i, r.Name, err))
		}
		if len(r.Criteria) == 0 {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): criteria: none", i, r.Name))
		}
		for _, c := range r.Criteria {
			if !slices.Contains(config.Criteria4, c) {
				errs = append(errs, fmt.Errorf("rules[%d] (%s): unknown criterion %q; use %s", i, r.Name, c, strings.Join(config.Criteria4, ", ")))
			}
		}
	}
	if len(errs) > 0 {
		return Policy{}, fmt.Errorf("policy %s: %w", source, errors.Join(errs...))
	}
	return p, nil
}

// Decision is the gate's answer.
type Decision struct {
	Pass    bool
	Reasons []string // why it fails
	Checked []string // what it checked and found good
}

// Evaluate applies a policy to a report.
func Evaluate(p Policy, c report.Conformance) Decision {
	var d Decision
	if c.Run.Error != "" {
		d.Reasons = append(d.Reasons, "the run did not complete: "+firstLine(c.Run.Error))
	}
	for _, r := range p.Rules {
		var picked []*report.Lane
		for _, l := range c.Lanes {
			if r.Lanes.match(l) {
				picked = append(picked, l)
			}
		}
		if len(picked) < r.minLanes() {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s: needs at least %d lane(s) with %s, the run had %d", r.Name, r.minLanes(), r.Lanes, len(picked)))
		}
		for _, l := range picked {
			for _, crit := range r.Criteria {
				cr := l.Criteria[crit]
				switch {
				case cr == nil:
					d.Reasons = append(d.Reasons, fmt.Sprintf("%s: lane %s has no %s result", r.Name, l.Name, crit))
				case cr.Verdict != r.Verdict:
					d.Reasons = append(d.Reasons, fmt.Sprintf("%s: lane %s %s is %s, must be %s: %s", r.Name, l.Name, crit, cr.Verdict, r.Verdict, firstLine(cr.Reason)))
				case r.ReasonContains != "" && !strings.Contains(cr.Reason, r.ReasonContains):
					d.Reasons = append(d.Reasons, fmt.Sprintf("%s: lane %s %s is %s, but for another reason than %q: %s", r.Name, l.Name, crit, cr.Verdict, r.ReasonContains, firstLine(cr.Reason)))
				default:
					d.Checked = append(d.Checked, fmt.Sprintf("%s: lane %s %s %s", r.Name, l.Name, crit, cr.Verdict))
				}
			}
		}
	}
	d.Pass = len(d.Reasons) == 0
	return d
}

// Change is one verdict that moved between a baseline and a report.
type Change struct {
	What     string
	From, To config.Verdict
}

// Compare lists regressions (a pass that no longer passes) and fixes (a non-pass that
// now passes), per lane criterion and per check, for lanes in both reports.
func Compare(baseline, current report.Conformance) (regressions, fixes []Change) {
	old := map[string]config.Verdict{}
	for _, l := range baseline.Lanes {
		for name, cr := range l.Criteria {
			old[l.Name+"/"+name] = cr.Verdict
			for _, ch := range cr.Checks {
				old[l.Name+"/"+name+"/"+ch.ID] = ch.Verdict
			}
		}
	}
	visit := func(key string, now config.Verdict) {
		was, ok := old[key]
		if !ok {
			return
		}
		switch {
		case was == config.VerdictPass && now != config.VerdictPass:
			regressions = append(regressions, Change{key, was, now})
		case was != config.VerdictPass && now == config.VerdictPass:
			fixes = append(fixes, Change{key, was, now})
		}
	}
	for _, l := range current.Lanes {
		for name, cr := range l.Criteria {
			visit(l.Name+"/"+name, cr.Verdict)
			for _, ch := range cr.Checks {
				visit(l.Name+"/"+name+"/"+ch.ID, ch.Verdict)
			}
		}
	}
	sort.Slice(regressions, func(i, j int) bool { return regressions[i].What < regressions[j].What })
	sort.Slice(fixes, func(i, j int) bool { return fixes[i].What < fixes[j].What })
	return regressions, fixes
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
