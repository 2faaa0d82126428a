package framework

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/reporting/report"
)

// Issue 10: a lane whose observation errored was reported "skipped: not run" with an
// empty lane error. It must be inconclusive with the error, in the lane's error, with
// an artifact that holds the whole error, redacted.
func TestObservationFailedIsRecordedAsAFailure(t *testing.T) {
	lane := config.Lane{Name: "l1", Role: config.RoleSubject, Runtime: "default"}
	lane.Default()
	s := &Suite{Dir: t.TempDir(), Recorder: report.NewRecorder(report.Run{ID: "abcdef", Start: time.Now()}, []config.Lane{lane})}
	s.AddSecret("s3cr3t")
	func() {
		defer func() { _ = recover() }() // ginkgo.Fail outside a running spec panics
		s.ObservationFailed(lane, "sudo", "copying files in", errors.New("no such file /tmp/kwc\nfull detail s3cr3t"),
			verdict.Check{ID: "earlier", Verdict: verdict.Pass})
	}()
	c := s.Recorder.Snapshot(time.Now())
	l := c.Lanes[0]
	sudo := l.Criteria["sudo"]
	if sudo.Verdict != verdict.Inconclusive || !strings.Contains(sudo.Reason, "copying files in") {
		t.Fatalf("sudo = %s %q, want inconclusive with the error", sudo.Verdict, sudo.Reason)
	}
	if len(sudo.Checks) != 2 || sudo.Checks[0].ID != "earlier" {
		t.Fatalf("the checks observed before the error must be kept: %+v", sudo.Checks)
	}
	if !strings.Contains(l.Error, "sudo: copying files in") {
		t.Fatalf("lane error = %q", l.Error)
	}
	if v := l.Criteria["build"]; v.Verdict != verdict.Inconclusive {
		t.Fatalf("a criterion never observed in a lane with an error must be inconclusive, got %s %q", v.Verdict, v.Reason)
	}
	art := sudo.Checks[1].Artifact
	b, err := os.ReadFile(filepath.Join(s.Dir, art))
	if err != nil {
		t.Fatalf("no artifact for the error (%q): %v", art, err)
	}
	if !strings.Contains(string(b), "full detail") || strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("the artifact must hold the full error, redacted: %q", b)
	}
}

func TestRecordRedactsEvidenceAndArtifacts(t *testing.T) {
	lane := config.Lane{Name: "c2", Role: config.RoleControl, Runtime: "default"}
	lane.Default()
	s := &Suite{Dir: t.TempDir(), Recorder: report.NewRecorder(report.Run{ID: "abcdef", Start: time.Now()}, []config.Lane{lane})}
	s.AddSecret("tok123")
	func() {
		defer func() { _ = recover() }()
		s.Record(lane, "sudo", verdict.Criterion{Verdict: verdict.Fail, Reason: "saw tok123", Checks: []verdict.Check{{ID: "ps", Verdict: verdict.Fail, Evidence: "sh -c read kwc-canary-abcdef:tok123"}}})
	}()
	c := s.Recorder.Snapshot(time.Now())
	cr := c.Lanes[0].Criteria["sudo"]
	if strings.Contains(cr.Reason+cr.Checks[0].Evidence, "tok123") {
		t.Fatalf("the secret is in the report: %+v", cr)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, cr.Checks[0].Artifact))
	if len(b) == 0 || strings.Contains(string(b), "tok123") {
		t.Fatalf("artifact %q: %q", cr.Checks[0].Artifact, b)
	}
}
