package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
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
	r.AddLaneError("c2", "workspace did not start: boom")
	c := r.Snapshot(time.Now())
	gitlab, c2 := c.Lanes[0], c.Lanes[1]
	if gitlab.Criteria["sudo"].Verdict != verdict.Pass {
		t.Fatal("a recorded criterion must survive the snapshot")
	}
	// Asked for and never observed (the run stopped first): inconclusive, not skipped.
	if v := gitlab.Criteria["build"]; v.Verdict != verdict.Inconclusive || !strings.Contains(v.Reason, "not observed") {
		t.Fatalf("a criterion asked for and never observed must be inconclusive: %+v", v)
	}
	// A lane whose workspace failed: its criteria are inconclusive with the error
	// (issue 10: they were "skipped", and a reader could not tell anything went wrong).
	if v := c2.Criteria["sudo"]; v.Verdict != verdict.Inconclusive || !strings.Contains(v.Reason, "boom") {
		t.Fatalf("a lane error must make its criteria inconclusive and explain them: %+v", v)
	}
	// Not in the lane's criteria list: skipped.
	if v := c2.Criteria["build"]; v.Verdict != verdict.Skipped {
		t.Fatalf("a criterion the lane does not measure is skipped: %+v", v)
	}
}

func TestSnapshotSkipsOnlyWhatWasNotAskedFor(t *testing.T) {
	r := NewRecorder(Run{ID: "x", Target: "docker", Start: time.Now()}, lanes())
	r.SetFiltered("runc-gitlab", "run")
	r.AddLaneError("runc-gitlab", "sudo: observing check a: exec failed")
	r.AddLaneError("runc-gitlab", "escape: copy failed")
	c := r.Snapshot(time.Now())
	l := c.Lanes[0]
	if v := l.Criteria["run"]; v.Verdict != verdict.Skipped || !strings.Contains(v.Reason, "label filter") {
		t.Fatalf("a filtered criterion is skipped and says why: %+v", v)
	}
	if v := l.Criteria["build"]; v.Verdict != verdict.Inconclusive || !strings.Contains(v.Reason, "exec failed") || !strings.Contains(v.Reason, "copy failed") {
		t.Fatalf("the lane's errors explain what was not observed: %+v", v)
	}
}

// A run killed while its report is written leaves the old report or the whole new
// one: a rendering that fails half way changes nothing.
func TestWriteKeepsTheOldReportWhenRenderingFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "conformance.json")
	if err := WriteFileAtomic(p, []byte("old, complete")); err != nil {
		t.Fatal(err)
	}
	err := writeAtomic(p, func(w io.Writer) error {
		_, _ = w.Write([]byte("new, half"))
		return errors.New("killed")
	})
	if err == nil {
		t.Fatal("a failed rendering must be an error")
	}
	if got := string(mustRead(t, p)); got != "old, complete" {
		t.Fatalf("a failed write changed the report to %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
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

// FuzzDecode: no conformance.json, however broken, panics the reader, and an accepted
// one renders in every format.
func FuzzDecode(f *testing.F) {
	r := NewRecorder(Run{ID: "abcdef", Target: "docker", Start: time.Unix(0, 0)}, lanes())
	r.SetCriterion("runc-gitlab", "sudo", verdict.AllChecks([]verdict.Check{{ID: "a", Verdict: verdict.Pass}}))
	r.AddLaneError("c2", "boom")
	var buf bytes.Buffer
	if err := encodeReport(&buf, r.Snapshot(time.Unix(10, 0))); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"apiVersion":"kwc.dev/v1alpha1","kind":"ConformanceReport","lanes":[null]}`))
	f.Add([]byte(`{"apiVersion":"kwc.dev/v1alpha1","kind":"ConformanceReport","lanes":[{"name":"x","criteria":{"sudo":null}}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b, "fuzz")
		if err != nil {
			return
		}
		Matrix(io.Discard, c)
		Markdown(io.Discard, c)
		if err := HTML(io.Discard, c); err != nil {
			t.Logf("html: %v", err)
		}
		if err := WriteJUnit(io.Discard, c); err != nil {
			t.Logf("junit: %v", err)
		}
	})
}
