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
	found, walked, cut := discoverSockets(ms, time.Now().Add(time.Minute))
	if !slices.Contains(found, sock) || cut != "" {
		t.Fatalf("found %v (walked %d, cut %q), want %s", found, walked, cut, sock)
	}
	if walked > 10 {
		t.Fatalf("walked %d entries: / or /proc was walked", walked)
	}
	if _, _, cut := discoverSockets(ms, time.Now().Add(-time.Second)); cut == "" {
		t.Fatal("a walk past its deadline must say it was cut")
	}
}
