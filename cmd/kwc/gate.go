package main

import (
	"fmt"
	"os"
	"path/filepath"

	"kwc.dev/kwc/internal/reporting/gate"
	"kwc.dev/kwc/internal/reporting/report"
)

// reportPath accepts a report folder or a conformance.json.
func reportPath(arg string) string {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return filepath.Join(arg, "conformance.json")
	}
	return arg
}

func gateCmd(args []string) error {
	fs := newFlags("gate", "--policy FILE [--baseline REPORT] [REPORT]")
	policyPath := fs.String("policy", "", "gate policy (YAML, kind GatePolicy); see fixtures/policies/")
	baselinePath := fs.String("baseline", "", "an earlier conformance.json: list regressions and fixes; a regression fails the gate")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	target := "reports/latest"
	if fs.NArg() > 0 {
		target = fs.Arg(0)
	}
	if *policyPath == "" && *baselinePath == "" {
		return usageError{fs, "say what to gate on: --policy FILE, --baseline REPORT, or both"}
	}
	c, err := report.Read(reportPath(target))
	if err != nil {
		return err
	}
	fail := false
	if *policyPath != "" {
		p, err := gate.LoadPolicy(*policyPath)
		if err != nil {
			return err
		}
		d := gate.Evaluate(p, c)
		for _, ok := range d.Checked {
			fmt.Printf("  ok    %s\n", ok)
		}
		for _, r := range d.Reasons {
			fmt.Printf("  FAIL  %s\n", r)
		}
		if d.Pass {
			fmt.Printf("gate: run %s passes %s\n", c.Run.ID, *policyPath)
		} else {
			fmt.Printf("gate: run %s FAILS %s (%d reasons)\n", c.Run.ID, *policyPath, len(d.Reasons))
			fail = true
		}
	}
	if *baselinePath != "" {
		b, err := report.Read(reportPath(*baselinePath))
		if err != nil {
			return err
		}
		reg, fixes := gate.Compare(b, c)
		for _, r := range reg {
			fmt.Printf("  REGRESSION  %s: %s -> %s\n", r.What, r.From, r.To)
		}
		for _, f := range fixes {
			fmt.Printf("  fixed       %s: %s -> %s\n", f.What, f.From, f.To)
		}
		fmt.Printf("baseline %s: %d regressions, %d fixes\n", b.Run.ID, len(reg), len(fixes))
		fail = fail || len(reg) > 0
	}
	if fail {
		return exitError(1)
	}
	return nil
}
