package kindrun

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
)

func cfg(t *testing.T) *config.Config {
	c, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Up with a node image that cannot be had fails with the cause and leaves nothing.
func TestUpFailsCleanlyWithoutANodeImage(t *testing.T) {
	if out, err := exec.Command("docker", "version").CombinedOutput(); err != nil {
		t.Fatalf("this test needs the container engine (make test starts one): %v %s", err, out)
	}
	c := cfg(t)
	c.KindCluster.NodeImage = "127.0.0.1:9/kwc/absent-node:v1.37.0"
	_, err := Up(context.Background(), Options{Config: c, RunID: "uptest", Dir: t.TempDir(), Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "absent-node") {
		t.Fatalf("want the pull failure, got %v", err)
	}
}

// kindCluster.nodeImage: offline with no built image named must stop before kind is
// asked for anything: kind would pull the config's published image otherwise.
func TestUpNeverFallsBackToThePublishedImage(t *testing.T) {
	c := cfg(t)
	c.KindCluster.NodeImage = config.NodeImageOffline
	_, err := Up(context.Background(), Options{Config: c, RunID: "offtest", Dir: t.TempDir(), Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "make node-image") {
		t.Fatalf("want the unbuilt offline image named, got %v", err)
	}
}
