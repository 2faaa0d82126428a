package dockertarget

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A newcomer without an engine must be told a command that exists (issue 10: the old
// fix line named .ci/engine.sh, which never existed).
func TestPreflightWithoutEngineSaysWhatToRun(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	tg, err := New("kwc-test", "unused")
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Preflight(context.Background())
	if err == nil {
		t.Fatal("Preflight passed with no engine")
	}
	msg := err.Error()
	if !strings.Contains(msg, `eval "$(hack/engine.sh start)"`) {
		t.Errorf("fix line does not name hack/engine.sh start:\n%s", msg)
	}
	for _, word := range strings.Fields(msg) {
		if strings.HasPrefix(word, "hack/") || strings.HasPrefix(word, ".ci/") {
			p := strings.Trim(word, `"()$`)
			if !exists(filepath.Join("..", "..", "..", p)) {
				t.Errorf("fix line names %s, which is not in the repository", p)
			}
		}
	}
}

func exists(p string) bool {
	m, _ := filepath.Glob(p)
	return len(m) > 0
}
