package probe

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kwc.dev/kwc/internal/probespec"
)

// The engine under test runs its own containerd; where kwc started the engine
// (hack/engine.sh, the CI engine) its socket sits beside the engine's. Asking it who
// it is must work: it is how the probe tells a node's containerd from a guest's.
func TestContainerdIdentityFromARealContainerd(t *testing.T) {
	var candidates []string
	if s := os.Getenv("KWC_CONTAINERD_SOCKET"); s != "" {
		candidates = append(candidates, s)
	}
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(h), "exec", "containerd", "containerd.sock"))
	}
	candidates = append(candidates, "/run/docker/containerd/containerd.sock", "/run/containerd/containerd.sock")
	for _, s := range candidates {
		if _, err := os.Stat(s); err != nil {
			continue
		}
		id, err := ContainerdUUID(context.Background(), s)
		if err != nil {
			t.Fatalf("containerd at %s did not say who it is: %v", s, err)
		}
		if len(id) < 32 {
			t.Fatalf("containerd at %s gave %q, not a UUID", s, id)
		}
		return
	}
	t.Fatalf("no containerd socket found among %v (make test starts an engine; or set KWC_CONTAINERD_SOCKET)", candidates)
}

// A socket deep in a mounted folder (a host /run mounted anywhere) is found; the
// workspace's own root and pseudo filesystems are not walked; the walk says when a
// bound cut it.
func TestDiscoverSocketsInEveryMount(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "run", "docker")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(deep, "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ms := []mountInfo{{point: "/", fstype: "overlay"}, {point: "/proc", fstype: "proc"}, {point: dir, fstype: "ext4"}}
	w := newWalker(probespec.Spec{})
	found := discoverSockets(ms, probespec.Spec{}, w)
	if !slices.Contains(found, sock) || w.cut() != "" {
		t.Fatalf("found %v (walked %d, cut %q), want %s", found, w.walked, w.cut(), sock)
	}
	if w.walked > 10 {
		t.Fatalf("walked %d entries: / or /proc was walked", w.walked)
	}
	late := newWalker(probespec.Spec{})
	late.deadline = time.Now().Add(-time.Second)
	if discoverSockets(ms, probespec.Spec{}, late); late.cut() == "" {
		t.Fatal("a walk past its deadline must say it was cut")
	}
	// The bounds come from the spec: a depth of 1 does not reach run/docker/.
	shallow := newWalker(probespec.Spec{Discovery: probespec.Bounds{WalkDepth: 1}})
	if found := discoverSockets(ms, probespec.Spec{}, shallow); slices.Contains(found, sock) {
		t.Fatalf("walkDepth 1 found %s two folders down", sock)
	}
}

// A socket listening in the abstract namespace is listed whatever its name: with the
// node's network namespace, every abstract socket of the node's daemons is there.
func TestListeningAbstractSocketsAreDiscovered(t *testing.T) {
	name := "@kwc-test-abstract-" + strings.ReplaceAll(t.Name(), "/", "-")
	l, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := listeningAbstract()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, name) {
		t.Fatalf("listening abstract sockets %v lack %s", got, name)
	}
}
