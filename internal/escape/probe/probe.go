// Package probe holds the escape probes kwc-probe runs inside a workspace (or a VM, or
// on the node itself as the reference). Probes observe and report; they never decide,
// never write node state, and never hold the secrets: everything a probe creates lives
// under the run's temporary directory and is removed before it returns.
package probe

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"kwc.dev/kwc/internal/capability"
	ownmounts "kwc.dev/kwc/internal/mounts"
	"kwc.dev/kwc/internal/probespec"
)

// runner is one probe's observation function.
type runner func(ctx context.Context, s probespec.Spec, o *obs)

var runners = map[string]runner{
	"P01-kernel-identity":      kernelIdentity,
	"P02-block-device-canary":  blockDeviceCanary,
	"P03-kernel-log":           kernelLog,
	"P04-mounted-host-file":    mountedHostFile,
	"P05-host-process-cmdline": hostProcessCmdline,
	"P06-ptrace-environ":       ptraceEnviron,
	"P07-proc-root-file":       procRootFile,
	"P08-loopback-challenge":   loopbackChallenge,
	"P09-abstract-socket":      abstractSocket,
	"P10-shm-file":             shmFile,
	"P11-sysv-shm":             sysvShm,
	"P12-keyring":              keyring,
	"P13-runtime-socket":       runtimeSocket,
	"P14-core-pattern":         func(ctx context.Context, s probespec.Spec, o *obs) { writableSysctl(o, "sys/kernel/core_pattern") },
	"P15-modprobe-path":        func(ctx context.Context, s probespec.Spec, o *obs) { writableSysctl(o, "sys/kernel/modprobe") },
	"P16-cgroup-release-agent": func(ctx context.Context, s probespec.Spec, o *obs) { cgroupV1Knob(s, o, "", "release_agent") },
	"P17-cgroup-devices-allow": func(ctx context.Context, s probespec.Spec, o *obs) { cgroupV1Knob(s, o, "devices", "devices.allow") },
	"P18-kernel-modules":       kernelModules,
	"P19-open-by-handle":       openByHandle,
	"P20-mknod-loop-canary":    mknodLoopCanary,
	"P21-host-disk-identity":   hostDiskIdentity,
}

// obs is an observation under construction.
type obs struct {
	probespec.Observation
	mu sync.Mutex
}

func (o *obs) logf(format string, a ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.Evidence = append(o.Evidence, fmt.Sprintf(format, a...))
}

func (o *obs) candidate(c string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(c) > 512 {
		c = c[:512]
	}
	if !slices.Contains(o.Candidates, c) {
		o.Candidates = append(o.Candidates, c)
	}
}

func (o *obs) fact(k, v string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Facts == nil {
		o.Facts = map[string]string{}
	}
	o.Facts[k] = v
}

func (o *obs) notApplicable(reason string) { o.Status, o.Reason = probespec.NotApplicable, reason }
func (o *obs) fail(format string, a ...any) {
	o.Status, o.Reason = probespec.Errored, fmt.Sprintf(format, a...)
}

// Run runs the catalogue (or spec.Only) and returns every observation. Each probe runs
// under its own deadline; one that overruns is reported as an error, not waited for.
func Run(ctx context.Context, s probespec.Spec) probespec.Result {
	start := time.Now()
	res := probespec.Result{Context: contextFacts()}
	if err := os.MkdirAll(s.TempDir, 0o700); err != nil {
		res.Context["tempDirError"] = err.Error()
	}
	// A probe that overran its deadline may still hold a mount here (a cgroup
	// hierarchy, on the node itself): detach before removing, never walk into one.
	defer func() {
		if err := ownmounts.DetachAndRemove(s.TempDir); err != nil {
			res.Context["tempDirError"] = err.Error()
		}
	}()
	// spec.TimeoutSeconds caps every probe's own timeout (a slow VM may want less).
	timeout := time.Duration(s.TimeoutSeconds * float64(time.Second))
	for _, p := range probespec.Catalog {
		if len(s.Only) > 0 && !slices.Contains(s.Only, p.ID) {
			continue
		}
		t := p.Timeout
		if t <= 0 || (s.TimeoutSeconds > 0 && timeout < t) {
			t = timeout
		}
		res.Observations = append(res.Observations, runOne(ctx, s, p, t))
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res
}

func runOne(ctx context.Context, s probespec.Spec, p probespec.Probe, timeout time.Duration) probespec.Observation {
	o := &obs{Observation: probespec.Observation{ID: p.ID, Status: probespec.Observed}}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				o.fail("probe panicked: %v", r)
			}
		}()
		runners[p.ID](ctx, s, o)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		o.mu.Lock()
		o.Status, o.Reason = probespec.Errored, fmt.Sprintf("timed out after %s", timeout)
		o.mu.Unlock()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.Observation
	out.Evidence = append([]string(nil), o.Evidence...)
	out.Candidates = append([]string(nil), o.Candidates...)
	out.DurationMS = time.Since(start).Milliseconds()
	return out
}

func contextFacts() map[string]string {
	f := map[string]string{"uid": strconv.Itoa(os.Getuid()), "pid": strconv.Itoa(os.Getpid())}
	if c, err := capability.ReadSelf(); err == nil {
		f["capEff"] = fmt.Sprintf("%016x", c.Eff)
		f["capBnd"] = fmt.Sprintf("%016x", c.Bnd)
		f["capEffFull"] = strconv.FormatBool(c.Eff&capability.Full() == capability.Full())
	}
	if h, err := os.Hostname(); err == nil {
		f["hostname"] = h
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
				f["seccomp"] = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "NoNewPrivs:"); ok {
				f["noNewPrivs"] = strings.TrimSpace(v)
			}
		}
	}
	return f
}

// readSmall reads at most n bytes of a file.
func readSmall(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := f.Read(buf)
	if k > 0 {
		return string(buf[:k]), nil
	}
	return "", err
}
