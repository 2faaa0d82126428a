package probespec

import (
	"slices"
	"testing"
	"time"
)

func TestCatalogIsConsistent(t *testing.T) {
	if len(Catalog) < 20 {
		t.Fatalf("%d probes; the escape criterion promises at least 20", len(Catalog))
	}
	seen := map[string]bool{}
	for _, p := range Catalog {
		if seen[p.ID] {
			t.Errorf("duplicate probe id %s", p.ID)
		}
		seen[p.ID] = true
		if !slices.Contains([]string{"C1", "C2", "C3"}, p.Control) {
			t.Errorf("%s: control %q; every probe needs a control lane where it must be reached", p.ID, p.Control)
		}
		if p.Timeout <= 0 || p.Timeout > 15*time.Second {
			t.Errorf("%s: timeout %s; every probe needs its own, short, timeout", p.ID, p.Timeout)
		}
		if len(p.Techniques) == 0 || p.Title == "" {
			t.Errorf("%s: needs techniques and a title for the report", p.ID)
		}
		switch p.Rule {
		case RuleSecret, RuleChallenge, RuleSameKernel, RuleWritableSameKernel, RuleNodeEngine, RuleNodeDisk:
		default:
			t.Errorf("%s: unknown rule %q", p.ID, p.Rule)
		}
	}
}
