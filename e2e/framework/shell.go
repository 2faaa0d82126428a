package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/target"
)

// WorkspaceUID and WorkspaceGID are the workspace user's ids (GitLab's layout).
const (
	WorkspaceUID = 5001
	WorkspaceGID = 0
)

// Shell runs commands in a workspace as the workspace user, the way that user would:
// root work goes through sudo.
type Shell struct {
	WS target.Workspace
}

// Sh runs a shell script as the workspace user.
func (s Shell) Sh(ctx context.Context, timeout time.Duration, script string) (target.ExecResult, error) {
	return s.WS.Exec(ctx, target.ExecRequest{Cmd: []string{"sh", "-c", script}, Timeout: timeout})
}

// Sudo runs a shell script as root through sudo -n.
//
// Every root script runs with DOCKER_HOST set to the workspace's own nested engine, so
// no docker command kwc runs can reach an engine socket mounted at the default path.
func (s Shell) Sudo(ctx context.Context, timeout time.Duration, script string) (target.ExecResult, error) {
	return s.WS.Exec(ctx, target.ExecRequest{Cmd: []string{"sudo", "-n", "env", "DOCKER_HOST=" + target.NestedDockerHost, "sh", "-c", script}, Timeout: timeout})
}

// CopyFiles writes files (relative names) under dir, owned by the workspace user.
func (s Shell) CopyFiles(ctx context.Context, dir string, files map[string][]byte, mode int64) error {
	if r, err := s.Sh(ctx, time.Minute, "mkdir -p "+dir); err != nil || !r.OK() {
		return fmt.Errorf("creating %s in the workspace: %v %s", dir, err, r.Stderr)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(n); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	for _, d := range dl {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Uid: WorkspaceUID, Gid: WorkspaceGID, ModTime: time.Now()}); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(files[n])), Uid: WorkspaceUID, Gid: WorkspaceGID, ModTime: time.Now()}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return s.WS.CopyIn(ctx, dir, &buf)
}

// Evidence renders commands and their results the way a person reads a terminal.
func Evidence(results ...target.ExecResult) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "$ %s\n", strings.Join(r.Cmd, " "))
		if out := strings.TrimRight(r.Stdout, "\n"); out != "" {
			b.WriteString(out + "\n")
		}
		if errOut := strings.TrimRight(r.Stderr, "\n"); errOut != "" {
			b.WriteString("[stderr] " + strings.ReplaceAll(errOut, "\n", "\n[stderr] ") + "\n")
		}
		fmt.Fprintf(&b, "[exit %d in %.1fs", r.ExitCode, r.Duration.Seconds())
		if r.TimedOut {
			b.WriteString(", timed out")
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// MaxEvidence bounds the evidence kept inline in conformance.json; the full text of a
// non-passing check goes to artifacts/.
const MaxEvidence = 4000

// Record stores a criterion: full evidence of non-passing checks as artifacts, trimmed
// evidence inline, and a report entry for Ginkgo's own reports.
func (s *Suite) Record(lane config.Lane, criterion string, c verdict.Criterion) {
	c = s.store(lane.Name, criterion, c)
	ginkgo.AddReportEntry(lane.Name+"/"+criterion, fmt.Sprintf("%s %s", c.Verdict, c.Reason))
}

// store redacts a criterion, writes the full evidence of its non-passing checks as
// artifacts, trims what stays inline and records it. It needs no running spec, so the
// judge uses it in the report phase.
func (s *Suite) store(lane, criterion string, c verdict.Criterion) verdict.Criterion {
	c.Reason = s.Redact(c.Reason)
	for i := range c.Checks {
		ch := &c.Checks[i]
		ch.Evidence, ch.Reason = s.Redact(ch.Evidence), s.Redact(ch.Reason)
		if ch.Verdict != verdict.Pass && len(ch.Evidence) > 0 {
			if art := s.WriteArtifact(filepath.Join(lane, criterion, safeName(ch.ID)+".txt"), ch.Evidence); art != "" {
				ch.Artifact = art
			}
		}
		if len(ch.Evidence) > MaxEvidence {
			ch.Evidence = ch.Evidence[:MaxEvidence/2] + "\n[… trimmed …]\n" + ch.Evidence[len(ch.Evidence)-MaxEvidence/2:]
		}
	}
	s.Recorder.SetCriterion(lane, criterion, c)
	return c
}

// RecordEscapeObservation stores what a lane's escape spec observed, redacted, for the
// judge. Evidence over MaxEvidence goes whole to artifacts/<lane>/escape/observed/
// and is trimmed in the observation.
func (s *Suite) RecordEscapeObservation(lane config.Lane, o verdict.EscapeObservation) {
	for ctx, pvs := range o.Contexts {
		for i := range pvs {
			pv := &pvs[i]
			pv.Evidence, pv.Reason = s.Redact(pv.Evidence), s.Redact(pv.Reason)
			if len(pv.Evidence) > MaxEvidence {
				art := s.WriteArtifact(filepath.Join(lane.Name, "escape", "observed", safeName(ctx+"/"+pv.ID)+".txt"), pv.Evidence)
				pv.Evidence = pv.Evidence[:MaxEvidence/2] + "\n[… trimmed; whole in " + art + " …]\n" + pv.Evidence[len(pv.Evidence)-MaxEvidence/2:]
			}
		}
	}
	for i := range o.Findings {
		f := &o.Findings[i]
		f.Reason = s.Redact(f.Reason)
		for j := range f.Evidence {
			f.Evidence[j] = s.Redact(f.Evidence[j])
		}
	}
	for i := range o.HostDiff {
		o.HostDiff[i] = s.Redact(o.HostDiff[i])
	}
	o.Unobservable = s.Redact(o.Unobservable)
	s.Recorder.SetEscapeObservation(lane.Name, o)
}

// JudgeEscape decides every observed lane's escape criterion from all lanes'
// observations and records each; run once, after every lane has been observed. It
// returns the lanes whose escape verdict misses their expectation, with why.
func (s *Suite) JudgeEscape(lanes []config.Lane) []string {
	judged := s.Recorder.Judge()
	var missed []string
	for _, l := range lanes {
		c, ok := judged[l.Name]
		if !ok {
			continue
		}
		c = s.store(l.Name, "escape", c)
		if msg := expectation(l, "escape", c); msg != "" {
			missed = append(missed, msg)
		}
	}
	return missed
}

// ExpectCriterion fails the spec when a criterion misses the lane's expectation; a
// criterion without one must still be conclusive.
func ExpectCriterion(lane config.Lane, criterion string, c verdict.Criterion) {
	if msg := expectation(lane, criterion, c); msg != "" {
		ginkgo.Fail(msg)
	}
}

// expectation says how a criterion misses the lane's expectation ("" when it meets it).
func expectation(lane config.Lane, criterion string, c verdict.Criterion) string {
	want, ok := lane.Expect[criterion]
	if verdict.Meets(c.Verdict, want, ok) {
		return ""
	}
	if ok {
		return fmt.Sprintf("lane %s: %s is %s, the lane expects %s: %s", lane.Name, criterion, c.Verdict, want, c.Reason)
	}
	return fmt.Sprintf("lane %s: %s could not be decided (%s): %s", lane.Name, criterion, c.Verdict, c.Reason)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

func relTo(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}
