// Package browsercheck loads a rendered index.html in headless Chromium, reads back
// the DOM the browser built (scripts run) and checks that every lane x criterion cell
// shows the report's verdict, then saves a screenshot: the report people open is
// checked the way they see it.
package browsercheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"golang.org/x/net/html"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/reporting/report"
)

// Chromium finds Debian's chromium.
func Chromium() (string, error) {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: apt-get install chromium (make deps installs it)")
}

// flags keep Chromium off the network: this machine's closed network refuses its
// background connections, and a report must need none.
func flags(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--user-data-dir=" + profile}
}

// Check loads page, verifies the matrix against c and writes a screenshot.
func Check(ctx context.Context, page string, c report.Conformance, screenshot string) error {
	bin, err := Chromium()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(page)
	if err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "kwc-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	dump := exec.CommandContext(ctx, bin, append(flags(profile), "--dump-dom", "file://"+abs)...)
	var stderr bytes.Buffer
	dump.Stderr = &stderr
	dom, err := dump.Output()
	if err != nil {
		return fmt.Errorf("chromium --dump-dom %s: %v\n%s", abs, err, logtail.Last(stderr.String(), 8))
	}
	if err := checkDOM(dom, c); err != nil {
		return err
	}
	if screenshot != "" {
		if err := os.MkdirAll(filepath.Dir(screenshot), 0o755); err != nil {
			return err
		}
		shotAbs, _ := filepath.Abs(screenshot)
		shot := exec.CommandContext(ctx, bin, append(flags(profile), "--screenshot="+shotAbs, "--window-size=1400,1000", "--hide-scrollbars", "file://"+abs)...)
		if out, err := shot.CombinedOutput(); err != nil {
			return fmt.Errorf("chromium --screenshot: %v\n%s", err, logtail.Last(string(out), 8))
		}
		st, err := os.Stat(shotAbs)
		if err != nil || st.Size() < 10_000 {
			return fmt.Errorf("the screenshot %s is missing or blank (%v)", shotAbs, err)
		}
	}
	return nil
}

// checkDOM compares the browser's DOM with the report: each lane row, each cell's
// verdict class and text, and the totals the page's script computes.
func checkDOM(dom []byte, c report.Conformance) error {
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		return fmt.Errorf("parsing the DOM Chromium produced: %w", err)
	}
	cells := map[string]map[string]*html.Node{}
	var totals *html.Node
	var walk func(n *html.Node, lane string)
	walk = func(n *html.Node, lane string) {
		if n.Type == html.ElementNode {
			if l := attr(n, "data-lane"); l != "" {
				lane = l
				cells[lane] = map[string]*html.Node{}
			}
			if cr := attr(n, "data-criterion"); cr != "" && lane != "" {
				cells[lane][cr] = n
			}
			if attr(n, "id") == "totals" {
				totals = n
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch, lane)
		}
	}
	walk(doc, "")
	var problems []string
	for _, l := range c.Lanes {
		row, ok := cells[l.Name]
		if !ok {
			problems = append(problems, "no matrix row for lane "+l.Name)
			continue
		}
		for _, name := range config.Criteria4 {
			cell := row[name]
			cr := l.Criteria[name]
			if cell == nil || cr == nil {
				problems = append(problems, fmt.Sprintf("%s/%s: cell or criterion missing", l.Name, name))
				continue
			}
			text := strings.TrimSpace(textOf(cell))
			if !strings.HasPrefix(text, string(cr.Verdict)) || !strings.Contains(" "+attr(cell, "class")+" ", " "+string(cr.Verdict)+" ") {
				problems = append(problems, fmt.Sprintf("%s/%s: the page shows %q (class %q), the report says %s", l.Name, name, text, attr(cell, "class"), cr.Verdict))
			}
		}
	}
	if totals == nil || !strings.Contains(textOf(totals), "pass: ") {
		problems = append(problems, "the page's script did not compute the totals (scripts blocked or broken)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("index.html as Chromium renders it disagrees with the report:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}
