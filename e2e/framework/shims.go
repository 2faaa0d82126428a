package framework

import (
	"slices"
	"strings"

	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/reporting/report"
)

// ShimFacts are the report's environment rows for the hypervisors a Kata run was
// asked for and the chart's shims it leaves out, each with why: a reader sees at once
// that no fc or SEV-SNP lane ran, and why, instead of wondering.
func ShimFacts(asked []string) map[string]string {
	var out []string
	for _, s := range katashims.LeftOut(asked) {
		out = append(out, s.Name+": "+s.WhyLeftOut())
	}
	return map[string]string{
		"kata.shims.asked":   strings.Join(asked, ", "),
		"kata.shims.leftOut": strings.Join(out, "; "),
	}
}

// ShimsRan says which asked-for shims got a workspace started in at least one lane,
// and which did not (their lanes' errors say why).
func ShimsRan(asked []string, lanes []*report.Lane) map[string]string {
	var ran, not []string
	for _, shim := range asked {
		started := slices.ContainsFunc(lanes, func(l *report.Lane) bool {
			return l.Runtime == "kata-"+shim && l.Workspace != ""
		})
		if started {
			ran = append(ran, shim)
		} else {
			not = append(not, shim)
		}
	}
	return map[string]string{
		"kata.shims.ran":    strings.Join(ran, ", "),
		"kata.shims.notRun": strings.Join(not, ", "),
	}
}
