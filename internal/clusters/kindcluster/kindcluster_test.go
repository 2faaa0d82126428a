package kindcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/kindconfigs"
)

// When the node image cannot be had, Create must fail with the reason, keep kind's
// logs, and leave no node container behind: the failure path, run for real against
// the engine. The image points at a loopback port where no registry listens, so the
// pull is refused on this machine and no traffic leaves it.
func TestCreateThatCannotPullFailsCleanly(t *testing.T) {
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Fatalf("this test needs the container engine (make test starts one): %v %s", err, out)
	}
	name := "kwc-failtest"
	cfg, err := kindconfigs.Load("default.yaml", name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Nodes {
		cfg.Nodes[i].Image = "127.0.0.1:9/kwc/absent-node:v1.37.0"
	}
	dir := t.TempDir()
	start := time.Now()
	c, err := Create(cfg, filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "kind-logs"), time.Minute, t.Logf)
	if err == nil {
		_ = c.Delete()
		t.Fatal("creating a cluster without its node image cannot succeed")
	}
	t.Logf("failed after %s: %v", time.Since(start).Round(time.Second), err)
	if !strings.Contains(err.Error(), "kwc-failtest") || !strings.Contains(strings.ToLower(err.Error()), "image") {
		t.Errorf("the error must name the cluster and the image problem: %v", err)
	}
	if strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Fatalf("the engine went away during the test; nothing was shown: %v", err)
	}
	out, perr := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+name, "--format", "{{.Names}}").Output()
	if perr != nil {
		t.Fatalf("listing node containers: %v", perr)
	}
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("node containers left behind: %s", out)
	}
	if ok, _ := Exists(name); ok {
		t.Error("kind still lists the cluster")
	}
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
		b, _ := os.ReadFile(filepath.Join(dir, "kubeconfig"))
		if strings.Contains(string(b), name) {
			t.Error("the kubeconfig still names the deleted cluster")
		}
	}
}
