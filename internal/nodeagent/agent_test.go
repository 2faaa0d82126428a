package nodeagent

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/probespec"
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
	p, err := Plant(Options{RunID: "unit" + strings.ReplaceAll(t.Name(), "/", "")[:4]})
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
	if err := p.Remove(); err != nil {
		t.Fatal(err)
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
