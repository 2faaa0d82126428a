package probe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
