package main

import (
	"context"
	"fmt"
	"path/filepath"

	"kwc.dev/kwc/internal/reporting/browsercheck"
	"kwc.dev/kwc/internal/reporting/report"
)

// reportCmd renders summary.md, index.html and junit.xml again from a
// conformance.json; with --rejudge it first decides the escape criteria again from
// the run's observations; with --check-browser it loads index.html in headless
// Chromium, checks the matrix against the report and saves a screenshot.
func reportCmd(ctx context.Context, args []string) error {
	fs := newFlags("report", "[--rejudge] [--check-browser] [--out DIR] [REPORT]")
	out := fs.String("out", "", "folder for the renderings (default: beside the report)")
	rejudge := fs.Bool("rejudge", false, "decide every escape criterion again from the observations saved in the report, with this build's rules")
	check := fs.Bool("check-browser", false, "check index.html in headless Chromium and save artifacts/index.png")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	target := "reports/latest"
	if fs.NArg() > 0 {
		target = fs.Arg(0)
	}
	path := reportPath(target)
	c, err := report.Read(path)
	if err != nil {
		return err
	}
	if *rejudge {
		n := report.Rejudge(&c)
		if n == 0 {
			return fmt.Errorf("%s holds no escape observations to judge (a report from before kwc recorded them, or a run that observed no lane)", path)
		}
		fmt.Printf("judged the escape criterion of %d lanes again from their observations\n", n)
	}
	dir := *out
	if dir == "" {
		dir, _ = filepath.EvalSymlinks(filepath.Dir(path))
	}
	if err := report.WriteAll(dir, c); err != nil {
		return err
	}
	fmt.Printf("rendered %s/{conformance.json,summary.md,index.html,junit.xml}\n", dir)
	if *check {
		shot := filepath.Join(dir, "artifacts", "index.png")
		if err := browsercheck.Check(ctx, filepath.Join(dir, "index.html"), c, shot); err != nil {
			return err
		}
		fmt.Printf("index.html checked in headless Chromium: every matrix cell matches; screenshot %s\n", shot)
	}
	return nil
}
