package framework

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/target"
)

// recorder is a workspace that records the commands it is asked to run.
type recorder struct {
	target.Workspace
	cmds [][]string
}

func (r *recorder) Exec(_ context.Context, req target.ExecRequest) (target.ExecResult, error) {
	r.cmds = append(r.cmds, req.Cmd)
	return target.ExecResult{}, nil
}

// Issue 10: a lane that mounts an engine socket at the default path made the toolbox
// drive the node's engine. Every root script kwc runs is pointed at the workspace's
// own nested engine.
func TestSudoScriptsNeverUseTheDefaultEngineSocket(t *testing.T) {
	ws := &recorder{}
	_, _ = Shell{WS: ws}.Sudo(context.Background(), time.Second, "docker info")
	cmd := strings.Join(ws.cmds[0], " ")
	if !strings.Contains(cmd, "DOCKER_HOST="+target.NestedDockerHost) {
		t.Fatalf("sudo script runs without DOCKER_HOST pinned to the nested engine: %s", cmd)
	}
}

// Source guard: every docker command in the specs and the probe runner goes through
// Shell.Sudo or names the nested engine, and no apt-get update reaches the image's
// own (network) sources.
func TestSpecsSendNoTrafficAndDriveNoForeignEngine(t *testing.T) {
	aptOnline := regexp.MustCompile(`apt-get (update|install)( |"|$)`)
	for _, dir := range []string{"../specs", "../../internal/escape/proberun"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				if aptOnline.MatchString(line) && !strings.Contains(line, "only") {
					t.Errorf("%s:%d runs apt-get without restricting it to the local repository: %s", f, i+1, strings.TrimSpace(line))
				}
				if strings.Contains(line, `"sudo", "-n", tool`) || strings.Contains(line, `"sudo", "-n", "docker"`) {
					t.Errorf("%s:%d runs docker through sudo without DOCKER_HOST: %s", f, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
}
