package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

var mdIcon = map[config.Verdict]string{verdict.Pass: "✅", verdict.Fail: "❌", verdict.Skipped: "⚪", verdict.Inconclusive: "⚠️"}

// Markdown writes summary.md: the matrix, then every check that did not pass with
// its one-line reason and where its full evidence is.
func Markdown(w io.Writer, c Conformance) {
	status := "completed"
	if c.Run.Error != "" {
		status = "did not complete: " + oneLine(c.Run.Error, 300)
	}
	fmt.Fprintf(w, "# kwc conformance: run %s (%s target)\n\n", c.Run.ID, c.Run.Target)
	fmt.Fprintf(w, "%s to %s, kwc %s. The run %s.\n\n", c.Run.Start.Format("2006-01-02 15:04:05Z"), c.Run.End.Format("15:04:05Z"), c.Run.Kwc, status)
	fmt.Fprintf(w, "| lane | role | runtime | %s |\n|---|---|---|%s\n", strings.Join(config.Criteria4, " | "), strings.Repeat("---|", len(config.Criteria4)))
	for _, l := range c.Lanes {
		role := string(l.Role)
		if l.Control != "" {
			role += " " + l.Control
		}
		cells := []string{l.Name, role, "`" + l.Runtime + "`"}
		for _, name := range config.Criteria4 {
			cells = append(cells, mdCell(l, name))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintf(w, "\n%s pass · %s fail · %s skipped · %s inconclusive. A tool list shows each tool's own verdict.\n",
		mdIcon[verdict.Pass], mdIcon[verdict.Fail], mdIcon[verdict.Skipped], mdIcon[verdict.Inconclusive])

	var lines []string
	for _, l := range c.Lanes {
		if l.Error != "" {
			lines = append(lines, fmt.Sprintf("- **%s**: the lane could not be measured: %s", l.Name, oneLine(l.Error, 300)))
		}
		for _, name := range config.Criteria4 {
			cr := l.Criteria[name]
			if cr == nil {
				continue
			}
			for _, ch := range cr.Checks {
				if ch.Verdict == verdict.Pass || (ch.Verdict == verdict.Skipped && strings.HasPrefix(ch.Reason, "informational")) {
					continue
				}
				line := fmt.Sprintf("- %s **%s / %s / %s**: %s", mdIcon[ch.Verdict], l.Name, name, ch.ID, oneLine(ch.Reason, 240))
				if ch.Artifact != "" {
					line += fmt.Sprintf(" ([evidence](%s))", ch.Artifact)
				}
				lines = append(lines, line)
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\n## What did not pass\n\n%s\n", strings.Join(lines, "\n"))
	}
	if len(c.Environment) > 0 {
		fmt.Fprintf(w, "\n## Environment\n\n| fact | value |\n|---|---|\n")
		keys := make([]string, 0, len(c.Environment))
		for k := range c.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "| %s | %s |\n", k, strings.ReplaceAll(oneLine(c.Environment[k], 200), "|", "\\|"))
		}
	}
}

func mdCell(l *Lane, name string) string {
	cr, ok := l.Criteria[name]
	if !ok {
		return "–"
	}
	s := mdIcon[cr.Verdict] + " " + string(cr.Verdict)
	if len(cr.Tools) > 0 {
		var parts []string
		for _, t := range slices.Sorted(maps.Keys(cr.Tools)) {
			parts = append(parts, t+" "+mdIcon[cr.Tools[t]])
		}
		s += "<br>" + strings.Join(parts, " ")
	}
	if want, ok := l.Expect[name]; ok && want != cr.Verdict {
		s += "<br>**expected " + string(want) + "**"
	}
	return s
}
