package browsercheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/reporting/report"
)

func sample() report.Conformance {
	crit := func(v config.Verdict) *verdict.Criterion {
		return &verdict.Criterion{Verdict: v, Reason: "r", Rule: "rule", Checks: []verdict.Check{{ID: "c1", Verdict: v, Evidence: "$ true\n<script>alert(1)</script>"}}}
	}
	return report.Conformance{APIVersion: report.APIVersion, Kind: report.Kind,
		Run:         report.Run{ID: "t1", Target: "docker", Start: time.Now().Add(-time.Minute), End: time.Now()},
		Environment: map[string]string{"host.kernel": "6.1"},
		Lanes: []*report.Lane{
			{Name: "kata", Role: config.RoleSubject, Criteria: map[string]*verdict.Criterion{"sudo": crit(verdict.Pass), "build": crit(verdict.Fail), "run": crit(verdict.Inconclusive), "escape": crit(verdict.Skipped)}},
		}}
}

// The real browser renders the real template: cells, script-computed totals, and a
// screenshot; evidence is escaped, not executed.
func TestIndexInHeadlessChromium(t *testing.T) {
	if _, err := Chromium(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := sample()
	if err := report.WriteAll(dir, c); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "artifacts", "index.png")
	if err := Check(context.Background(), filepath.Join(dir, "index.html"), c, shot); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if strings.Contains(string(page), "<script>alert(1)") {
		t.Fatal("evidence must be escaped in the page")
	}
	for _, ref := range []string{"http://", "https://", "src="} {
		if strings.Contains(string(page), ref) {
			t.Fatalf("index.html must be self-contained, found %q", ref)
		}
	}
}

// The check must be able to fail: a page that disagrees with the report is caught.
func TestCheckCatchesAWrongCell(t *testing.T) {
	dir := t.TempDir()
	c := sample()
	if err := report.WriteAll(dir, c); err != nil {
		t.Fatal(err)
	}
	c.Lanes[0].Criteria["build"].Verdict = verdict.Pass
	err := Check(context.Background(), filepath.Join(dir, "index.html"), c, "")
	if err == nil || !strings.Contains(err.Error(), "kata/build") {
		t.Fatalf("want a disagreement on kata/build, got %v", err)
	}
}
