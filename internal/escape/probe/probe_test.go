package probe

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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

// Issue 11: P11 attached only the segment with the canary's key, so a segment the
// node made under any other key was never read. It reads every segment its IPC
// namespace lists.
func TestSysvSegmentsAreReadWhateverTheirKey(t *testing.T) {
	id, err := unix.SysvShmGet(0x6b7a0000|os.Getpid()&0xffff, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	b, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "kwc-canary-unitsysv:tok")
	_ = unix.SysvShmDetach(b)
	o := &obs{Observation: probespec.Observation{ID: "P11-sysv-shm", Status: probespec.Observed}}
	sysvShm(context.Background(), probespec.Spec{ShmKey: 0x12345}, o)
	if !slices.Contains(o.Candidates, "kwc-canary-unitsysv:tok") {
		t.Fatalf("segment %d under another key was not read: candidates %q", id, o.Candidates)
	}
}
