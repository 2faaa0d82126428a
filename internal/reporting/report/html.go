package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"kwc.dev/kwc/internal/config"
)

//go:embed index.html.tmpl
var indexTmpl string

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"duration": func(r Run) string {
		if r.End.IsZero() {
			return "unfinished"
		}
		return r.End.Sub(r.Start).Round(time.Second).String()
	},
	// A log scale keeps a 20-minute image build and a 0.5 s probe run both visible.
	"barWidth": func(s float64) int { return int(math.Max(2, 60*math.Log10(1+s))) },
}).Parse(indexTmpl))

// HTML writes index.html: one self-contained file (no fetches), the matrix with colour
// and text per verdict, every check's evidence behind a disclosure, timings and the
// environment.
func HTML(w io.Writer, c Conformance) error {
	data := struct {
		Conformance
		Criteria []string
	}{c, config.Criteria4}
	if err := indexPage.Execute(w, data); err != nil {
		return fmt.Errorf("rendering index.html: %w", err)
	}
	return nil
}
