package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// base is what every wing may use and which uses nothing but itself: the config, the
// probe catalogue, Kata's facts, the Target interface and small helpers.
var base = []string{"config", "runid", "cachedir", "logtail", "mounts", "capability", "probespec", "katashims", "kataversion", "target"}

// data are the go:embed packages at the top (fixtures, Dockerfiles, kind configs):
// anything may read them.
var data = []string{"kwc.dev/kwc/fixtures", "kwc.dev/kwc/dockerfiles", "kwc.dev/kwc/kindconfigs"}

// Issue 13: the layout shows the architecture only if imports follow it: cmd -> e2e
// -> wings -> base, nothing upward, and no production package imports testing.
func TestImportsFollowTheLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "e2e", "-f", `{{.ImportPath}} {{join .Imports ","}}`, "kwc.dev/kwc/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	isBase := func(p string) bool {
		rest, ok := strings.CutPrefix(p, "kwc.dev/kwc/internal/")
		return ok && slices.Contains(base, rest)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Split(imports, ",") {
			switch {
			case imp == "testing":
				t.Errorf("%s is not a test, yet imports testing", pkg)
			case !strings.HasPrefix(imp, "kwc.dev/kwc/") || slices.Contains(data, imp):
			case strings.HasPrefix(imp, "kwc.dev/kwc/cmd/"):
				t.Errorf("%s imports the command %s", pkg, imp)
			case strings.HasPrefix(imp, "kwc.dev/kwc/e2e") && !strings.HasPrefix(pkg, "kwc.dev/kwc/e2e") && !strings.HasPrefix(pkg, "kwc.dev/kwc/cmd/"):
				t.Errorf("%s imports the suite %s: only cmd may", pkg, imp)
			case strings.HasPrefix(imp, "kwc.dev/kwc/e2e") && strings.HasPrefix(pkg, "kwc.dev/kwc/cmd/"):
				t.Errorf("%s imports the Ginkgo suite %s: the CLI carries no Ginkgo", pkg, imp)
			case isBase(pkg) && !isBase(imp):
				t.Errorf("base package %s imports %s, a wing above it", pkg, imp)
			}
		}
	}
}
