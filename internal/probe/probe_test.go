package probe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/probespec"
)

func TestEveryCatalogEntryHasARunner(t *testing.T) {
	for _, p := range probespec.Catalog {
		if runners[p.ID] == nil {
			t.Errorf("%s has no implementation", p.ID)
		}
	}
	if len(runners) != len(probespec.Catalog) {
		t.Errorf("%d runners for %d catalogue entries", len(runners), len(probespec.Catalog))
	}
}

// With nothing planted, every probe must come back blocked-shaped (no candidate holds
// anything) or not applicable, and leave its temporary directory removed. How fast is
// BenchmarkProbeSet's question (make bench).
func TestRunWithNothingPlantedFindsNothingAndCleansUp(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), "probe-tmp")
	spec := probespec.Spec{RunID: "unit", Marker: "kwc-canary-unit-nothing", CanaryPath: "/nonexistent/kwc/canary",
		LoopbackPort: 1, AbstractSocket: "kwc-canary-unit-nothing", ShmName: "kwc-canary-unit-nothing", ShmKey: 0x6b77fffe,
		KeyDescription: "kwc-canary-unit-nothing", TempDir: tmp, TimeoutSeconds: 5}
	res := Run(context.Background(), spec)
	if len(res.Observations) != len(probespec.Catalog) {
		t.Fatalf("%d observations for %d probes", len(res.Observations), len(probespec.Catalog))
	}
	for _, o := range res.Observations {
		for _, c := range o.Candidates {
			if strings.Contains(c, spec.Marker+":") {
				t.Errorf("%s found a canary nobody planted: %q", o.ID, c)
			}
		}
		if o.Status == probespec.Errored {
			t.Errorf("%s errored: %s", o.ID, o.Reason)
		}
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the probe left %s behind", tmp)
	}
}

func TestScanForMarkerAcrossChunks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev")
	data := make([]byte, (1<<20)+100)
	copy(data[(1<<20)-5:], "kwc-canary-x:SECRET\x00")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	found, n, err := scanForMarker(p, 64<<20, "kwc-canary-x")
	if err != nil || n != int64(len(data)) {
		t.Fatalf("%v, read %d", err, n)
	}
	if len(found) == 0 || found[0] != "kwc-canary-x:SECRET" {
		t.Fatalf("a marker spanning a read boundary must be found: %q", found)
	}
}
