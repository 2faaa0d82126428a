// Package preflight checks, before anything slow, that a host (and later each kind
// node) can run Kata guests, and says for each failure what is wrong and how to fix
// it. Without KVM the kind target stops in seconds and points at the docker target.
package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Check is one prerequisite.
type Check struct {
	Name   string
	OK     bool
	Detail string
	Fix    string
}

// Host reads the host's facts; Root prefixes every path (tests point it at a fake
// tree) and KVMAPIVersion asks /dev/kvm for its API version.
type Host struct {
	Root          string
	KVMAPIVersion func(path string) (int, error)
}

// System is the real host.
func System() Host { return Host{KVMAPIVersion: kvmAPIVersion} }

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

func (h Host) exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

// KVM checks what a Kata guest needs from the host: CPU virtualization, a usable
// /dev/kvm from a real KVM implementation, and the vhost devices.
func (h Host) KVM() []Check {
	var out []Check
	cpu, _ := os.ReadFile(h.path("/proc/cpuinfo"))
	hasVirt := bytes.Contains(cpu, []byte(" vmx")) || bytes.Contains(cpu, []byte(" svm"))
	out = append(out, Check{Name: "CPU virtualization (vmx/svm)", OK: hasVirt,
		Detail: map[bool]string{true: "present", false: "the CPU flags show neither vmx nor svm"}[hasVirt],
		Fix:    "enable VT-x/AMD-V in the firmware, or nested virtualization when this host is itself a VM"})

	kvm := Check{Name: "/dev/kvm usable", Fix: "load kvm_intel or kvm_amd, and let this user open /dev/kvm (a udev rule with MODE=0666, or the kvm group)"}
	switch v, err := h.KVMAPIVersion(h.path("/dev/kvm")); {
	case errors.Is(err, os.ErrNotExist):
		kvm.Detail = "/dev/kvm does not exist"
	case err != nil:
		kvm.Detail = "opening /dev/kvm: " + err.Error()
	case v != 12:
		kvm.Detail = fmt.Sprintf("KVM API version %d, want 12", v)
	default:
		kvm.OK, kvm.Detail = true, "KVM API version 12"
	}
	out = append(out, kvm)

	impl := Check{Name: "KVM implementation", Fix: "run on hardware or a VM with nested virtualization, where kvm_intel or kvm_amd loads"}
	switch {
	case h.exists("/sys/module/kvm_intel"):
		impl.OK, impl.Detail = true, "kvm_intel"
	case h.exists("/sys/module/kvm_amd"):
		impl.OK, impl.Detail = true, "kvm_amd"
	case h.exists("/sys/module/kvm_pvm"):
		impl.Detail = "kvm_pvm, a paravirtual KVM that cannot boot Kata's stock guest kernels"
	default:
		impl.Detail = "neither kvm_intel nor kvm_amd is loaded"
	}
	out = append(out, impl)

	for _, m := range []struct{ dev, mod, issue string }{
		{"/dev/vhost-vsock", "vhost_vsock", "kata-containers#3459"},
		{"/dev/vhost-net", "vhost_net", "kata-containers#6451"},
	} {
		c := Check{Name: m.dev, Fix: "modprobe " + m.mod + " (before the cluster is created: a kind node sees the host's devices as they were when it started)"}
		if h.exists(m.dev) {
			c.OK, c.Detail = true, "present"
		} else {
			c.Detail = fmt.Sprintf("missing; Kata fails with \"open %s: no such device\" (%s)", m.dev, m.issue)
		}
		out = append(out, c)
	}
	return out
}

func kvmAPIVersion(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	const kvmGetAPIVersion = 0xAE00
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	return v, nil
}

// Failed returns the failing checks.
func Failed(checks []Check) []Check {
	var out []Check
	for _, c := range checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Error explains failed checks, each with its fix, and what to run instead.
func Error(checks []Check, instead string) error {
	bad := Failed(checks)
	if len(bad) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "preflight: %d of %d checks failed; this host cannot run Kata guests:\n", len(bad), len(checks))
	for _, c := range bad {
		fmt.Fprintf(&b, "  - %s: %s\n    fix: %s\n", c.Name, c.Detail, c.Fix)
	}
	if instead != "" {
		b.WriteString("  " + instead)
	}
	return errors.New(strings.TrimRight(b.String(), "\n"))
}

// Render lists every check, for --kwc.dry-run and the report.
func Render(checks []Check) string {
	var b strings.Builder
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}
