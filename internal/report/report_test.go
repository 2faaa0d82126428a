package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/verdict"
)

func lanes() []config.Lane {
	a := config.Lane{Name: "runc-gitlab", Role: config.RoleSubject, Runtime: "default", Expect: map[string]config.Verdict{"sudo": config.VerdictPass}}
	b := config.Lane{Name: "c2", Role: config.RoleControl, Control: "C2", Runtime: "default", Criteria: []string{"sudo", "escape"}}
	a.Default()
	b.Default()
	return []config.Lane{a, b}
}

func TestSnapshotNamesEveryGap(t *testing.T) {
	r := NewRecorder(Run{ID: "x", Target: "docker", Start: time.Now()}, lanes())
	r.SetCriterion("runc-gitlab", "sudo", verdict.AllChecks([]verdict.Check{{ID: "a", Verdict: verdict.Pass}}))
	r.SetLaneError("c2", "workspace did not start: boom")
	c := r.Snapshot(time.Now())
	gitlab, c2 := c.Lanes[0], c.Lanes[1]
	if gitlab.Criteria["sudo"].Verdict != verdict.Pass {
		t.Fatal("a recorded criterion must survive the snapshot")
	}
	if v := gitlab.Criteria["build"]; v.Verdict != verdict.Skipped || !strings.Contains(v.Reason, "not run") {
		t.Fatalf("an unmeasured criterion must say so: %+v", v)
	}
	if v := c2.Criteria["sudo"]; !strings.Contains(v.Reason, "boom") {
		t.Fatalf("a lane error must explain its criteria: %+v", v)
	}
}

func TestWriteReadRoundTripAndLatest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "20260101-000000-x")
	r := NewRecorder(Run{ID: "x", Target: "docker", Start: time.Now()}, lanes())
	p, err := Write(dir, r.Snapshot(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(p)
	if err != nil {
		t.Fatalf("a written report must read back strictly: %v", err)
	}
	if c.Run.ID != "x" || len(c.Lanes) != 2 {
		t.Fatalf("%+v", c.Run)
	}
	latest, err := os.Readlink(filepath.Join(filepath.Dir(dir), "latest"))
	if err != nil || latest != filepath.Base(dir) {
		t.Fatalf("latest -> %q (%v), want a relative link to the run", latest, err)
	}
	if err := os.WriteFile(p, bytes.Replace(mustRead(t, p), []byte(`"kind": "ConformanceReport"`), []byte(`"kind": "ConformanceReport", "extra": 1`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil {
		t.Fatal("an unknown field must be rejected")
	}
}

func TestMatrixShowsToolsAndMissedExpectations(t *testing.T) {
	r := NewRecorder(Run{ID: "x"}, lanes())
	r.SetCriterion("runc-gitlab", "sudo", verdict.AllChecks([]verdict.Check{{ID: "a", Verdict: verdict.Fail, Reason: "sudo -n id -u did not print 0"}}))
	r.SetCriterion("runc-gitlab", "build", verdict.ByTool([]verdict.Check{{ID: "b", Tool: "docker", Verdict: verdict.Fail}, {ID: "c", Tool: "buildah", Verdict: verdict.Pass}},
		config.ToolPolicy{Tools: []string{"docker", "buildah"}, Require: "any"}))
	var b bytes.Buffer
	Matrix(&b, r.Snapshot(time.Now()))
	out := b.String()
	for _, want := range []string{"LANE", "runc-gitlab", "fail !expected pass", "buildah:ok docker:FAIL", "did not print 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("matrix lacks %q:\n%s", want, out)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
