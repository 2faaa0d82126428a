package main

import (
	"fmt"
	"os"

	"kwc.dev/kwc/internal/reporting/report"
)

// compareCmd fails when two runs' verdicts differ anywhere (a criterion or a check):
// how make bench shows that running lanes in parallel changes no verdict.
func compareCmd(args []string) error {
	fs := newFlags("compare", "[--times] REPORT-A REPORT-B")
	times := fs.Bool("times", false, "also print both runs' phases side by side and the ratio of their wall times")
	if err := parseFlags(fs, args, 2); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{fs, "name the two reports to compare"}
	}
	a, err := report.Read(reportPath(fs.Arg(0)))
	if err != nil {
		return err
	}
	b, err := report.Read(reportPath(fs.Arg(1)))
	if err != nil {
		return err
	}
	if *times {
		report.CompareTimes(os.Stdout, a, b)
	}
	diff := report.CompareVerdicts(a, b)
	for _, d := range diff {
		fmt.Printf("  DIFF  %s\n", d)
	}
	if len(diff) > 0 {
		fmt.Printf("compare: runs %s and %s differ in %d verdicts\n", a.Run.ID, b.Run.ID, len(diff))
		return exitError(1)
	}
	fmt.Printf("compare: runs %s and %s have the same verdicts (%d lanes)\n", a.Run.ID, b.Run.ID, len(a.Lanes))
	return nil
}
