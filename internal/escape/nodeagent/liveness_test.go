package nodeagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/runid"
)

// Issue 11: a canary that went away (its process killed, its file removed, its
// kernel-log line aged out) still yielded "blocked". The node confirms every canary
// before and after each lane; what is not alive marks its probes' facts, so their
// "blocked" is an error.
func TestCanaryLivenessSeesWhatWentAway(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the node agent test needs root (make test runs as root)")
	}
	p, err := Plant(Options{RunID: runid.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	before, _ := p.Alive(context.Background())
	if len(before.Dead) > 0 {
		t.Fatalf("freshly planted canaries are not alive: %v", before.Dead)
	}
	if before.Facts["bootID"] == "" || before.Facts[probespec.FactBootTime] == "" {
		t.Fatalf("liveness reads the node's kernel facts afresh: %v", before.Facts)
	}
	// Kill the canary process and remove the file canary, as a node's cleanup or an
	// OOM kill would.
	if err := os.Remove(p.Spec().CanaryPath); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pidsWith(t, p.Spec().Marker+":"+p.Token()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	var after Liveness
	for i := 0; i < 50; i++ {
		if after, _ = p.Alive(context.Background()); after.Dead[probespec.CanaryProcess] != "" {
			break
		}
	}
	for _, c := range []string{probespec.CanaryFile, probespec.CanaryProcess} {
		if after.Dead[c] == "" {
			t.Errorf("the %s canary went away, and liveness did not see it: %v", c, after.Dead)
		}
	}
	if after.Dead[probespec.CanaryLoopback] != "" || after.Dead[probespec.CanarySysvShm] != "" {
		t.Errorf("canaries still there were reported dead: %v", after.Dead)
	}
	facts := LaneFacts(p.Facts(), p.Inventory(), before, after, nil, nil)
	if !strings.Contains(facts[probespec.CanaryMissingFact(probespec.CanaryProcess)], "after the lane") {
		t.Fatalf("lane facts do not mark the process canary: %v", facts)
	}
	// A liveness check that could not run marks every canary.
	facts = LaneFacts(p.Facts(), p.Inventory(), before, Liveness{}, nil, os.ErrDeadlineExceeded)
	if facts[probespec.CanaryMissingFact(probespec.CanaryLoopback)] == "" {
		t.Fatal("an unchecked canary must count as missing")
	}
}

func pidsWith(t *testing.T, content string) []int {
	t.Helper()
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), content) {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err == nil {
				out = append(out, pid)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no canary process found")
	}
	return out
}

// Issue 11: on Kubernetes nodes the agent planted no folder canaries (it saw the
// node's root read-only), so a workspace with a host /etc or /home passed. The agent
// now writes through a writable mount of the node's root and tells the probes the
// node's own path.
func TestFolderCanariesThroughTheNodeRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the node agent test needs root (make test runs as root)")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := Plant(Options{RunID: runid.New(), Folders: []string{"/etc", "/absent"}, NodeRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	want := filepath.Join("/etc", FolderCanaryName(p.Spec().RunID))
	if got := p.Spec().FolderCanaries; len(got) != 1 || got[0] != want {
		t.Fatalf("the probes must be told the node's path %s, got %v", want, got)
	}
	if _, err := os.Stat(filepath.Join(root, want)); err != nil {
		t.Fatalf("the canary is not under the node root: %v", err)
	}
	if _, err := os.Stat(want); err == nil {
		t.Fatalf("the canary went to the agent's own %s", want)
	}
	if l, _ := p.Alive(context.Background()); l.Dead[probespec.CanaryFolderFiles] != "" {
		t.Fatalf("liveness must read the folder canary through the node root: %v", l.Dead)
	}
	if err := os.Remove(filepath.Join(root, want)); err != nil {
		t.Fatal(err)
	}
	if l, _ := p.Alive(context.Background()); l.Dead[probespec.CanaryFolderFiles] == "" {
		t.Fatal("a removed folder canary must be seen as gone")
	}
}
