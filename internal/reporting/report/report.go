// Package report holds the conformance report: its versioned schema, how it is written
// under reports/<timestamp>-<id>/, and the lane x criterion matrix people read first.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

// APIVersion and Kind identify a conformance report.
const (
	APIVersion = "kwc.dev/v1alpha1"
	Kind       = "ConformanceReport"
)

// Conformance is conformance.json.
type Conformance struct {
	APIVersion  string            `json:"apiVersion"`
	Kind        string            `json:"kind"`
	Run         Run               `json:"run"`
	Environment map[string]string `json:"environment"`
	Lanes       []*Lane           `json:"lanes"`
}

// Run says what ran, when, where and with what configuration.
type Run struct {
	ID     string    `json:"id"`
	Target string    `json:"target"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Kwc    string    `json:"kwcVersion"`
	Commit string    `json:"commit,omitempty"`
	// Phases are the run's timed steps (setup, each lane's workspace, each criterion).
	Phases []Phase        `json:"phases,omitempty"`
	Config *config.Config `json:"config,omitempty"`
	// Error is set when the run could not complete (preflight, interrupt).
	Error string `json:"error,omitempty"`
}

// Phase is one timed step of a run.
type Phase struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"durationSeconds"`
}

// Lane is one lane's results.
type Lane struct {
	Name      string                    `json:"name"`
	Role      config.Role               `json:"role"`
	Control   string                    `json:"control,omitempty"`
	Runtime   string                    `json:"runtime"`
	Shape     config.Shape              `json:"shape"`
	Isolation config.Isolation          `json:"isolation"`
	Expect    map[string]config.Verdict `json:"expect,omitempty"`
	Measures  []string                  `json:"measures"`
	Workspace string                    `json:"workspace,omitempty"`
	Error     string                    `json:"error,omitempty"`
	// Filtered are the criteria this run's label filter left out: skipped because
	// nobody asked, unlike a criterion that was asked for and never observed.
	Filtered []string                      `json:"filtered,omitempty"`
	Criteria map[string]*verdict.Criterion `json:"criteria"`
	// EscapeObservation is what the lane's escape spec observed; the escape criterion
	// is judged from it and every other lane's after all have run (Judge), and
	// kwc report --rejudge judges a saved run again.
	EscapeObservation *verdict.EscapeObservation `json:"escapeObservation,omitempty"`
}

// Recorder gathers results while specs run; it is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	doc Conformance
}

// NewRecorder starts a report for a run.
func NewRecorder(run Run, lanes []config.Lane) *Recorder {
	r := &Recorder{doc: Conformance{APIVersion: APIVersion, Kind: Kind, Run: run, Environment: map[string]string{}}}
	for _, l := range lanes {
		r.doc.Lanes = append(r.doc.Lanes, &Lane{
			Name: l.Name, Role: l.Role, Control: l.Control, Runtime: l.Runtime, Shape: l.Shape,
			Isolation: l.Isolation, Expect: l.Expect, Measures: l.Criteria, Criteria: map[string]*verdict.Criterion{},
		})
	}
	return r
}

func (r *Recorder) lane(name string) *Lane {
	for _, l := range r.doc.Lanes {
		if l.Name == name {
			return l
		}
	}
	l := &Lane{Name: name, Criteria: map[string]*verdict.Criterion{}}
	r.doc.Lanes = append(r.doc.Lanes, l)
	return l
}

// SetCriterion records a lane's criterion.
func (r *Recorder) SetCriterion(lane, criterion string, c verdict.Criterion) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lane(lane).Criteria[criterion] = &c
}

// SetEscapeObservation records what a lane's escape spec observed, for the judge.
func (r *Recorder) SetEscapeObservation(lane string, o verdict.EscapeObservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lane(lane).EscapeObservation = &o
}

// Judge decides every observed lane's escape criterion from all lanes' observations
// and returns them by lane; the caller records them (with artifacts).
func (r *Recorder) Judge() map[string]verdict.Criterion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return JudgeEscape(r.doc.Lanes)
}

// JudgeEscape decides the escape criterion of every lane in lanes that holds an
// observation, from all of them at once.
func JudgeEscape(lanes []*Lane) map[string]verdict.Criterion {
	var observed []verdict.ObservedLane
	for _, l := range lanes {
		if l.EscapeObservation == nil {
			continue
		}
		observed = append(observed, verdict.ObservedLane{
			Lane:        config.Lane{Name: l.Name, Role: l.Role, Control: l.Control, Runtime: l.Runtime, Shape: l.Shape, Isolation: l.Isolation, Expect: l.Expect, Criteria: l.Measures},
			Observation: *l.EscapeObservation,
		})
	}
	return verdict.JudgeEscape(observed)
}

// Rejudge decides the escape criteria of a saved report again from its observations
// (a rule fixed since the run applies to its evidence). The probe verdicts inside the
// observations stay as they were read in the run: reading them needed the run's
// secret, which was never written down.
func Rejudge(c *Conformance) int {
	judged := JudgeEscape(c.Lanes)
	for _, l := range c.Lanes {
		if crit, ok := judged[l.Name]; ok {
			if old := l.Criteria["escape"]; old != nil {
				// Keep the artifacts the run wrote for the same checks.
				arts := map[string]string{}
				for _, ch := range old.Checks {
					arts[ch.ID] = ch.Artifact
				}
				for i := range crit.Checks {
					crit.Checks[i].Artifact = arts[crit.Checks[i].ID]
				}
			}
			l.Criteria["escape"] = &crit
		}
	}
	return len(judged)
}

// Merge adds what another process of the same run recorded (Ginkgo's parallel
// processes each record their own lanes): lanes' criteria, observations, errors and
// workspaces, the environment and the phases.
func (r *Recorder) Merge(part Conformance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pl := range part.Lanes {
		l := r.lane(pl.Name)
		for k, c := range pl.Criteria {
			l.Criteria[k] = c
		}
		if pl.EscapeObservation != nil {
			l.EscapeObservation = pl.EscapeObservation
		}
		if pl.Error != "" {
			if l.Error == "" {
				l.Error = pl.Error
			} else if !strings.Contains(l.Error, pl.Error) {
				l.Error += "; " + pl.Error
			}
		}
		if pl.Workspace != "" {
			l.Workspace = pl.Workspace
		}
		for _, f := range pl.Filtered {
			if !slices.Contains(l.Filtered, f) {
				l.Filtered = append(l.Filtered, f)
			}
		}
	}
	for k, v := range part.Environment {
		r.doc.Environment[k] = v
	}
	r.doc.Run.Phases = append(r.doc.Run.Phases, part.Run.Phases...)
	sort.SliceStable(r.doc.Run.Phases, func(i, j int) bool { return r.doc.Run.Phases[i].Start.Before(r.doc.Run.Phases[j].Start) })
	if r.doc.Run.Error == "" {
		r.doc.Run.Error = part.Run.Error
	}
}

// Part is what this process recorded, for Merge in process 1: unlike Snapshot, it
// marks nothing as unobserved.
func (r *Recorder) Part() Conformance {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.doc)
	var c Conformance
	_ = json.Unmarshal(b, &c)
	return c
}

// AddLaneError adds to what went wrong in a lane; the lane's error lists every one.
func (r *Recorder) AddLaneError(lane, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lane(lane)
	if l.Error == "" {
		l.Error = msg
	} else {
		l.Error += "; " + msg
	}
}

// SetFiltered records that the run's label filter leaves criterion out of lane.
func (r *Recorder) SetFiltered(lane, criterion string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lane(lane)
	if !slices.Contains(l.Filtered, criterion) {
		l.Filtered = append(l.Filtered, criterion)
	}
}

// SetWorkspace records how to find the lane's workspace.
func (r *Recorder) SetWorkspace(lane, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lane(lane).Workspace = name
}

// SetEnv records environment facts.
func (r *Recorder) SetEnv(facts map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range facts {
		r.doc.Environment[k] = v
	}
}

// AddPhase records a timed step.
func (r *Recorder) AddPhase(name string, start time.Time, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doc.Run.Phases = append(r.doc.Run.Phases, Phase{Name: name, Start: start.UTC(), Seconds: end.Sub(start).Round(time.Millisecond).Seconds()})
}

// SetRunError records why the run did not complete.
func (r *Recorder) SetRunError(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.doc.Run.Error == "" {
		r.doc.Run.Error = msg
	}
}

// Snapshot returns a deep copy of the report, with End set and every criterion that
// was never recorded marked, so a reader never mistakes a gap for a result. Skipped
// is only for what nobody asked for (the lane's criteria list, the label filter); a
// criterion that was asked for and not observed is inconclusive, with the reason.
func (r *Recorder) Snapshot(end time.Time) Conformance {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(r.doc)
	var c Conformance
	_ = json.Unmarshal(b, &c)
	c.Run.End = end
	for _, l := range c.Lanes {
		for _, name := range config.Criteria4 {
			if _, ok := l.Criteria[name]; ok {
				continue
			}
			v, reason := unobserved(l, c.Run.Error, name)
			l.Criteria[name] = &verdict.Criterion{Verdict: v, Reason: reason, Rule: "-", Checks: []verdict.Check{}}
		}
	}
	return c
}

// unobserved is the verdict and reason of a criterion lane l never recorded, in a run
// that stopped with runErr ("" when it did not).
func unobserved(l *Lane, runErr, criterion string) (config.Verdict, string) {
	switch {
	case !slices.Contains(l.Measures, criterion):
		return verdict.Skipped, "not measured in this lane (its criteria list leaves it out)"
	case slices.Contains(l.Filtered, criterion):
		return verdict.Skipped, "not asked for (the run's label filter leaves it out)"
	case l.Error != "":
		return verdict.Inconclusive, "not observed: " + l.Error
	case runErr != "":
		return verdict.Inconclusive, "not observed: the run stopped: " + runErr
	}
	return verdict.Inconclusive, "not observed: the run stopped before it (interrupted, or a failure before its spec ran)"
}

// Write writes conformance.json into dir and points <dir>/../latest at dir.
func Write(dir string, c Conformance) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating report dir %s: %w", dir, err)
	}
	var buf bytes.Buffer
	if err := encodeReport(&buf, c); err != nil {
		return "", fmt.Errorf("encoding the report: %w", err)
	}
	p := filepath.Join(dir, "conformance.json")
	if err := WriteFileAtomic(p, buf.Bytes()); err != nil {
		return "", err
	}
	return p, PointLatest(dir)
}

func encodeReport(w io.Writer, c Conformance) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and renames it
// over path: a run killed while writing leaves the old file or the whole new one,
// never a truncated report.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

func writeAtomic(path string, render func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	err = render(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// PointLatest makes <parent>/latest a relative link to dir.
func PointLatest(dir string) error {
	latest := filepath.Join(filepath.Dir(dir), "latest")
	tmp := latest + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		return fmt.Errorf("linking %s: %w", latest, err)
	}
	if err := os.Rename(tmp, latest); err != nil {
		return fmt.Errorf("linking %s: %w", latest, err)
	}
	return nil
}

// Read decodes a conformance.json strictly.
func Read(path string) (Conformance, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Conformance{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return Decode(b, path)
}

// Decode decodes a conformance.json strictly; path names it in errors.
func Decode(b []byte, path string) (Conformance, error) {
	var c Conformance
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Conformance{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	if c.APIVersion != APIVersion || c.Kind != Kind {
		return Conformance{}, fmt.Errorf("%s: apiVersion %q kind %q, want %s %s", path, c.APIVersion, c.Kind, APIVersion, Kind)
	}
	if err := c.validate(); err != nil {
		return Conformance{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// validate rejects a report the gate and renderings could misread: empty or repeated
// lanes, criteria without a verdict, verdicts kwc never writes.
func (c Conformance) validate() error {
	var errs []error
	seen := map[string]bool{}
	verdicts := []config.Verdict{verdict.Pass, verdict.Fail, verdict.Skipped, verdict.Inconclusive}
	for i, l := range c.Lanes {
		if l == nil || l.Name == "" {
			errs = append(errs, fmt.Errorf("lanes[%d]: no lane name", i))
			continue
		}
		if seen[l.Name] {
			errs = append(errs, fmt.Errorf("lanes[%d]: lane %s appears twice", i, l.Name))
		}
		seen[l.Name] = true
		for _, name := range slices.Sorted(maps.Keys(l.Criteria)) {
			cr := l.Criteria[name]
			switch {
			case !slices.Contains(config.Criteria4, name):
				errs = append(errs, fmt.Errorf("lane %s: unknown criterion %q", l.Name, name))
			case cr == nil:
				errs = append(errs, fmt.Errorf("lane %s: criterion %s has no verdict", l.Name, name))
			case !slices.Contains(verdicts, cr.Verdict):
				errs = append(errs, fmt.Errorf("lane %s: criterion %s has verdict %q", l.Name, name, cr.Verdict))
			}
		}
	}
	return errors.Join(errs...)
}

// Matrix prints the lane x criterion matrix, then each lane's non-pass reasons.
func Matrix(w io.Writer, c Conformance) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "LANE\tROLE\tRUNTIME\t%s\n", strings.ToUpper(strings.Join(config.Criteria4, "\t")))
	for _, l := range c.Lanes {
		role := string(l.Role)
		if l.Control != "" {
			role += " " + l.Control
		}
		cells := []string{l.Name, role, l.Runtime}
		for _, name := range config.Criteria4 {
			cells = append(cells, cell(l, name))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	for _, l := range c.Lanes {
		names := make([]string, 0, len(l.Criteria))
		for n := range l.Criteria {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cr := l.Criteria[n]
			if cr.Verdict != verdict.Pass || cr.Reason != "" {
				fmt.Fprintf(w, "  %s/%s %s: %s\n", l.Name, n, cr.Verdict, oneLine(cr.Reason, 200))
			}
		}
	}
}

func cell(l *Lane, name string) string {
	cr, ok := l.Criteria[name]
	if !ok {
		return "-"
	}
	s := string(cr.Verdict)
	if len(cr.Tools) > 0 {
		var parts []string
		for _, t := range slices.Sorted(maps.Keys(cr.Tools)) {
			parts = append(parts, t+":"+short(cr.Tools[t]))
		}
		s += " (" + strings.Join(parts, " ") + ")"
	}
	if want, ok := l.Expect[name]; ok && want != cr.Verdict {
		s += " !expected " + string(want)
	}
	return s
}

func short(v config.Verdict) string {
	switch v {
	case verdict.Pass:
		return "ok"
	case verdict.Fail:
		return "FAIL"
	case verdict.Skipped:
		return "skip"
	}
	return "??"
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// WriteAll writes every rendering of a report into dir: conformance.json, summary.md,
// index.html and junit.xml, and points latest at dir.
func WriteAll(dir string, c Conformance) error {
	if _, err := Write(dir, c); err != nil {
		return err
	}
	for name, render := range map[string]func(io.Writer, Conformance) error{
		"summary.md": func(w io.Writer, c Conformance) error { Markdown(w, c); return nil },
		"index.html": HTML,
		"junit.xml":  WriteJUnit,
	} {
		if err := writeAtomic(filepath.Join(dir, name), func(w io.Writer) error { return render(w, c) }); err != nil {
			return err
		}
	}
	return nil
}
