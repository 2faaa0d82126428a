package report

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// CompareVerdicts lists where two runs' verdicts differ: each lane's criteria and
// each of their checks, by id. Evidence, reasons and times are not compared: the
// same workspaces observed twice (serial, then parallel) must be judged alike even
// though their output differs.
func CompareVerdicts(a, b Conformance) []string {
	type key struct{ lane, criterion, check string }
	index := func(c Conformance) map[key]string {
		m := map[key]string{}
		for _, l := range c.Lanes {
			for name, crit := range l.Criteria {
				m[key{l.Name, name, ""}] = string(crit.Verdict)
				for _, ch := range crit.Checks {
					m[key{l.Name, name, ch.ID}] = string(ch.Verdict)
				}
			}
		}
		return m
	}
	ia, ib := index(a), index(b)
	keys := map[key]bool{}
	for k := range ia {
		keys[k] = true
	}
	for k := range ib {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		va, vb := ia[k], ib[k]
		if va == vb {
			continue
		}
		what := k.lane + " " + k.criterion
		if k.check != "" {
			what += " check " + k.check
		}
		out = append(out, fmt.Sprintf("%s: %s in %s, %s in %s", what, orAbsent(va), a.Run.ID, orAbsent(vb), b.Run.ID))
	}
	sort.Strings(out)
	return out
}

func orAbsent(v string) string {
	if v == "" {
		return "absent"
	}
	return v
}

// CompareTimes prints two runs' phases side by side (seconds) and the ratio of their
// wall times: how make bench shows what running lanes in parallel buys.
func CompareTimes(w io.Writer, a, b Conformance) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PHASE\t%s (s)\t%s (s)\n", a.Run.ID, b.Run.ID)
	sb := map[string]float64{}
	for _, p := range b.Run.Phases {
		sb[p.Name] += p.Seconds
	}
	seen := map[string]bool{}
	for _, p := range a.Run.Phases {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		sum := 0.0
		for _, q := range a.Run.Phases {
			if q.Name == p.Name {
				sum += q.Seconds
			}
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\n", p.Name, sum, sb[p.Name])
	}
	wa, wb := a.Run.End.Sub(a.Run.Start).Seconds(), b.Run.End.Sub(b.Run.Start).Seconds()
	fmt.Fprintf(tw, "wall time\t%.1f\t%.1f\n", wa, wb)
	tw.Flush()
	if wb > 0 {
		fmt.Fprintf(w, "ratio %s/%s: %.2f\n", a.Run.ID, b.Run.ID, wa/wb)
	}
}
