package probe

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"kwc.dev/kwc/internal/probespec"
)

// BenchmarkProbeSet runs the whole catalogue as one context does, with nothing
// planted, and reports the median and the slowest probe set. The target is a median
// under 1.5 s per context (CDK's evaluate --full takes 1.2-1.5 s). On the host this
// is the worst case for the discovery probes: every host mount is walked.
func BenchmarkProbeSet(b *testing.B) {
	var runs []time.Duration
	for i := 0; b.Loop(); i++ {
		spec := probespec.Spec{RunID: "bench", Marker: "kwc-canary-bench-nothing", CanaryPath: "/nonexistent/kwc/canary",
			LoopbackPort: 1, AbstractSocket: "kwc-canary-bench-nothing", ShmName: "kwc-canary-bench-nothing", ShmKey: 0x6b77fffd,
			KeyDescription: "kwc-canary-bench-nothing", TempDir: filepath.Join(b.TempDir(), "probe-tmp"), TimeoutSeconds: 15}
		start := time.Now()
		res := Run(context.Background(), spec)
		runs = append(runs, time.Since(start))
		if len(res.Observations) != len(probespec.Catalog) {
			b.Fatalf("%d observations for %d probes", len(res.Observations), len(probespec.Catalog))
		}
	}
	slices.Sort(runs)
	b.ReportMetric(float64(runs[len(runs)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(runs[len(runs)-1].Milliseconds()), "max-ms")
}
