package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/onsi/ginkgo/v2"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

// secrets are the run's canary secrets, which no artifact or report may carry (a C2
// lane's `ps -ef` shows the canary process's command line).
type secrets struct {
	mu   sync.Mutex
	list []string
}

// AddSecret registers a value every artifact and evidence text is redacted of.
func (s *Suite) AddSecret(v string) {
	if v == "" {
		return
	}
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	s.secrets.list = append(s.secrets.list, v)
}

// Redact replaces every registered secret in text with <secret>.
func (s *Suite) Redact(text string) string {
	s.secrets.mu.Lock()
	defer s.secrets.mu.Unlock()
	for _, v := range s.secrets.list {
		text = strings.ReplaceAll(text, v, "<secret>")
	}
	return text
}

// WriteArtifact writes text, redacted, to artifacts/<rel> in the run folder and
// returns its path relative to the run folder ("" when it could not be written).
func (s *Suite) WriteArtifact(rel, text string) string {
	p := filepath.Join(s.Dir, "artifacts", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return ""
	}
	if err := os.WriteFile(p, []byte(s.Redact(text)), 0o644); err != nil {
		return ""
	}
	return relTo(s.Dir, p)
}

// ObservationFailed records that observing criterion in lane failed while doing
// something, then fails the spec. The criterion is inconclusive with the error as its
// reason (the checks observed before it are kept), the lane's error says so, and the
// full error is an artifact: a reader of any rendering sees that something went
// wrong, not a "skipped".
func (s *Suite) ObservationFailed(lane config.Lane, criterion, doing string, err error, observed ...verdict.Check) {
	ginkgo.GinkgoHelper()
	msg := fmt.Sprintf("%s: %v", doing, err)
	art := s.WriteArtifact(filepath.Join(lane.Name, criterion, "observation-error.txt"), msg+"\n")
	short := s.Redact(strings.SplitN(msg, "\n", 2)[0])
	c := verdict.Criterion{Verdict: verdict.Inconclusive, Rule: "-", Checks: append([]verdict.Check{}, observed...),
		Reason: "the observation failed: " + short}
	c.Checks = append(c.Checks, verdict.Check{ID: "observation-error", Verdict: verdict.Inconclusive, Reason: short, Artifact: art})
	s.Recorder.AddLaneError(lane.Name, criterion+": "+short)
	s.Record(lane, criterion, c)
	ginkgo.Fail(fmt.Sprintf("lane %s: observing %s failed: %s", lane.Name, criterion, s.Redact(msg)))
}

// Observed fails the spec through ObservationFailed when err is not nil.
func (s *Suite) Observed(lane config.Lane, criterion, doing string, err error, observed ...verdict.Check) {
	ginkgo.GinkgoHelper()
	if err != nil {
		s.ObservationFailed(lane, criterion, doing, err, observed...)
	}
}
