package nodeagent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/runid"
)

func TestDiff(t *testing.T) {
	a := Snapshot{"x": "1", "y": "2"}
	b := Snapshot{"x": "1", "y": "3", "z": "new"}
	d := Diff(a, b)
	if len(d) != 2 || !strings.HasPrefix(d[0], "y:") || !strings.HasPrefix(d[1], "z:") {
		t.Fatalf("%q", d)
	}
	if len(Diff(a, a)) != 0 {
		t.Fatal("no change, no diff")
	}
}

func TestAnswerIsKeyedByTheSecret(t *testing.T) {
	if Answer("s1", "n") == Answer("s2", "n") || Answer("s1", "n") == Answer("s1", "m") {
		t.Fatal("the challenge answer must depend on both secret and nonce")
	}
}

// Planting and removing on the real host: everything planted must be gone after
// Remove, and the spec handed to probes must never carry the secret.
func TestPlantAndRemoveOnTheHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the node agent test needs root (make test runs as root)")
	}
	p, err := Plant(Options{RunID: runid.New()})
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec()
	if strings.Contains(string(mustJSON(t, spec)), p.Token()) {
		t.Fatal("the probe spec carries the secret")
	}
	b, err := os.ReadFile(spec.CanaryPath)
	if err != nil || !strings.Contains(string(b), p.Token()) {
		t.Fatalf("file canary: %v", err)
	}
	if _, err := os.Stat("/dev/shm/" + spec.ShmName); err != nil {
		t.Fatalf("shm canary: %v", err)
	}
	loop := "/sys/dev/block/" + spec.LoopDevice + "/loop/backing_file"
	if b, err := os.ReadFile(loop); err != nil || !strings.Contains(string(b), "kwc-loop-") {
		t.Fatalf("the loop canary is not attached (%s): %v %s", spec.LoopDevice, err, b)
	}
	if ro, _ := os.ReadFile("/sys/dev/block/" + spec.LoopDevice + "/ro"); strings.TrimSpace(string(ro)) != "1" {
		t.Fatalf("the loop canary must be read-only, ro=%q", ro)
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(loop); err == nil && strings.TrimSpace(string(b)) != "" {
		t.Fatalf("the loop canary is still attached after Remove: %s", b)
	}
	for _, path := range []string{spec.CanaryPath, "/dev/shm/" + spec.ShmName} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Remove", path)
		}
	}
	if err := p.Remove(); err != nil {
		t.Fatal("Remove must be safe to call twice")
	}
}

func mustJSON(t *testing.T, s probespec.Spec) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The agent reads a node's configuration through a root prefix, follows containerd's
// imports, and reports paths as the node sees them.
func TestCollectNodeConfigFollowsImports(t *testing.T) {
	root := t.TempDir()
	write := func(p, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/containerd/config.toml", "version = 2\nimports = [\"/opt/kata/containerd/config.d/*.toml\"]\n")
	write("/opt/kata/containerd/config.d/kata-deploy.toml", "version = 2\n")
	write("/opt/kata/share/defaults/kata-containers/configuration-qemu.toml", "[hypervisor.qemu]\n")
	n := CollectNodeConfig(root, "/etc/containerd/config.toml")
	if _, ok := n.Containerd["/opt/kata/containerd/config.d/kata-deploy.toml"]; !ok || len(n.Containerd) != 2 {
		t.Fatalf("containerd files: %v", keys(n.Containerd))
	}
	if _, ok := n.KataConfigs["/opt/kata/share/defaults/kata-containers/configuration-qemu.toml"]; !ok {
		t.Fatalf("kata files: %v", keys(n.KataConfigs))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A root the agent cannot read must not compare equal to itself and pass.
func TestBlindSnapshotIsAnError(t *testing.T) {
	if _, err := TakeSnapshotAt(t.TempDir()); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("want an error for an unreadable node root, got %v", err)
	}
	if _, err := TakeSnapshotAt("/"); err != nil {
		t.Fatal(err)
	}
}

// Issue 10: the loop device node the agent made in a container's /dev was never
// removed. removeIfNode removes a block node and leaves anything else.
func TestRemoveIfNodeRemovesOnlyBlockNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mknod needs root (make test runs as root)")
	}
	dir := t.TempDir()
	node := filepath.Join(dir, "loop99")
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 99))); err != nil {
		t.Fatal(err)
	}
	if err := removeIfNode(node); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(node); !os.IsNotExist(err) {
		t.Fatalf("the block node is still there: %v", err)
	}
	file := filepath.Join(dir, "loop98")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := removeIfNode(file); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(file); err != nil {
		t.Fatalf("a regular file was removed: %v", err)
	}
	if err := removeIfNode(filepath.Join(dir, "absent")); err != nil {
		t.Fatalf("an absent node is not an error: %v", err)
	}
}
