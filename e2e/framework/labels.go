package framework

import (
	"fmt"
	"sort"
	"sync"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// Criterion labels; lane labels are label sets, lane:<name>.
const (
	LabelSudo   = "sudo"
	LabelBuild  = "build"
	LabelRun    = "run"
	LabelEscape = "escape"
)

// labels is the registry every label in the tree must come from, so a typo in a spec
// (or a lane name no config defines) fails when the tree is built, not silently.
var labels = struct {
	sync.Mutex
	valid  map[string]bool
	frozen bool
}{valid: map[string]bool{LabelSudo: true, LabelBuild: true, LabelRun: true, LabelEscape: true}}

// RegisterLane adds lane:<name> to the registry; it must happen before Freeze.
func RegisterLane(name string) {
	labels.Lock()
	defer labels.Unlock()
	if labels.frozen {
		panic(fmt.Sprintf("label registry is frozen: register lane %q before the spec tree is built", name))
	}
	labels.valid[LaneLabel(name)] = true
}

// Freeze closes the registry.
func FreezeLabels() {
	labels.Lock()
	defer labels.Unlock()
	labels.frozen = true
}

// LaneLabel is the label-set label of a lane.
func LaneLabel(name string) string { return "lane:" + name }

// Label returns Ginkgo labels after checking each against the registry.
func Label(names ...string) ginkgo.Labels {
	labels.Lock()
	defer labels.Unlock()
	for _, n := range names {
		if !labels.valid[n] {
			panic(fmt.Sprintf("label %q is not registered (known: %v)", n, knownLocked()))
		}
	}
	return ginkgo.Label(names...)
}

// KnownLabels lists the registry, for `make e2e-list` and error messages.
func KnownLabels() []string {
	labels.Lock()
	defer labels.Unlock()
	return knownLocked()
}

func knownLocked() []string {
	out := make([]string, 0, len(labels.valid))
	for k := range labels.valid {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Selected reports whether the run's label filter (--label-filter, LABELS=) selects a
// spec with these labels; with no filter every spec is selected. A filter Ginkgo
// could not parse would have stopped the run before the tree is built, so a parse
// error here counts as selected: a gap is then reported as not observed, never as a
// skip.
func Selected(specLabels ...string) bool {
	f := ginkgo.GinkgoLabelFilter()
	if f == "" {
		return true
	}
	match, err := types.ParseLabelFilter(f)
	if err != nil {
		return true
	}
	return match(specLabels)
}
