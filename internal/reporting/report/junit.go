package report

import (
	"encoding/xml"
	"fmt"
	"io"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

// JUnit is kwc's own JUnit file: one testcase per check, named lane / criterion /
// check, the reason as the failure message and nothing else, so CI viewers that choke
// on Ginkgo's full timelines (kubernetes#111510) cope. Evidence stays in the report.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
}

// WriteJUnit writes the trimmed JUnit of a report.
func WriteJUnit(w io.Writer, c Conformance) error {
	top := junitSuites{Name: "kwc conformance " + c.Run.ID}
	for _, l := range c.Lanes {
		s := junitSuite{Name: l.Name}
		add := func(jc junitCase) {
			s.Tests++
			switch {
			case jc.Failure != nil:
				s.Failures++
			case jc.Error != nil:
				s.Errors++
			case jc.Skipped != nil:
				s.Skipped++
			}
			s.Cases = append(s.Cases, jc)
		}
		if l.Error != "" {
			add(junitCase{Name: l.Name + " / workspace", Classname: l.Name, Error: &junitMessage{Message: oneLine(l.Error, 500), Type: "setup"}})
		}
		for _, name := range config.Criteria4 {
			cr := l.Criteria[name]
			if cr == nil {
				continue
			}
			for _, ch := range cr.Checks {
				jc := junitCase{Name: fmt.Sprintf("%s / %s / %s", l.Name, name, ch.ID), Classname: l.Name + "." + name, Time: ch.DurationSeconds}
				msg := &junitMessage{Message: oneLine(ch.Reason, 500)}
				switch ch.Verdict {
				case verdict.Fail:
					jc.Failure = msg
				case verdict.Inconclusive:
					msg.Type = "inconclusive"
					jc.Error = msg
				case verdict.Skipped:
					jc.Skipped = msg
				}
				add(jc)
			}
		}
		top.Tests += s.Tests
		top.Failures += s.Failures
		top.Errors += s.Errors
		top.Skipped += s.Skipped
		top.Suites = append(top.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(top); err != nil {
		return fmt.Errorf("encoding JUnit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
