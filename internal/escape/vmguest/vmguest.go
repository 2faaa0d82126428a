// Package vmguest boots a real VM boundary for calibrating the escape probes: QEMU
// (software emulation unless a normal KVM is present) running Debian's kernel with an
// initramfs made in Go whose init is kwc-probe itself.
package vmguest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"kwc.dev/kwc/internal/escape/proberun"
	"kwc.dev/kwc/internal/probespec"
)

// Console markers, as printed by kwc-probe's init mode.
const (
	resultBegin = "KWC-PROBE-RESULT-BEGIN"
	resultEnd   = "KWC-PROBE-RESULT-END"
)

var depends = regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)`)

// Kernel returns a Debian kernel image, resolved through the linux-image-amd64
// metapackage, downloaded with apt-get and unpacked with dpkg -x into cacheDir;
// nothing is installed into /boot.
func Kernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("resolving linux-image-amd64 (apt-cache depends): %w; run apt-get update first", err)
	}
	m := depends.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("linux-image-amd64 names no kernel package:\n%s", out)
	}
	pkg := string(m[1])
	dir := filepath.Join(cacheDir, "kernel", pkg)
	if found, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*")); len(found) == 1 {
		return found[0], nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logf("downloading %s (the calibration VM's kernel)", pkg)
	dl := exec.CommandContext(ctx, "apt-get", "download", pkg)
	dl.Dir = dir
	if b, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d packages in %s", pkg, len(debs), dir)
	}
	if b, err := exec.CommandContext(ctx, "dpkg", "-x", debs[0], dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg -x %s: %v\n%s", debs[0], err, b)
	}
	_ = os.Remove(debs[0])
	_ = os.RemoveAll(filepath.Join(dir, "lib"))
	found, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(found) != 1 {
		return "", fmt.Errorf("no vmlinuz in %s", pkg)
	}
	return found[0], nil
}

// Initramfs writes a newc archive whose /init is the static probe binary. The serial
// console is built into Debian's kernel, so no module is needed.
func Initramfs(probe []byte, path string) error {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.CharDev("dev/null", 0o666, 1, 3),
		cpio.Directory("proc", 0o555),
		cpio.Directory("sys", 0o555),
		cpio.Directory("tmp", 0o1777),
		cpio.Directory("var", 0o755),
		cpio.Directory("var/lib", 0o755),
		cpio.StaticFile("init", string(probe), 0o755),
	}
	cpio.MakeAllReproducible(recs)
	if err := cpio.WriteRecords(w, recs); err != nil {
		return fmt.Errorf("writing the initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Accel picks KVM only where a normal kvm_intel/kvm_amd and vmx/svm are present; the
// paravirtual KVM of some sandboxes cannot boot a stock kernel.
func Accel() string {
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	hasFlag := bytes.Contains(cpu, []byte(" vmx")) || bytes.Contains(cpu, []byte(" svm"))
	_, errI := os.Stat("/sys/module/kvm_intel")
	_, errA := os.Stat("/sys/module/kvm_amd")
	if _, err := os.Stat("/dev/kvm"); err == nil && hasFlag && (errI == nil || errA == nil) {
		return "kvm"
	}
	return "tcg"
}

// Boot runs the probe set in a VM and returns its result and the console log.
func Boot(ctx context.Context, kernel, initrd string, spec probespec.Spec, timeout time.Duration) (probespec.Result, string, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return probespec.Result{}, "", fmt.Errorf("qemu-system-x86_64 is missing: apt-get install qemu-system-x86")
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return probespec.Result{}, "", err
	}
	appendLine := "console=ttyS0 panic=-1 loglevel=3 kwc.spec=" + base64.RawURLEncoding.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No network device, no disk: the guest's only link to the host is the console.
	cmd := exec.CommandContext(ctx, qemu, "-accel", Accel(), "-m", "512", "-smp", "1", "-nographic",
		"-no-reboot", "-nodefaults", "-serial", "stdio", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", appendLine)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	console := out.String()
	i, j := strings.Index(console, resultBegin), strings.Index(console, resultEnd)
	if i < 0 || j < i {
		if ctx.Err() != nil {
			return probespec.Result{}, console, fmt.Errorf("the VM did not finish within %s", timeout)
		}
		return probespec.Result{}, console, fmt.Errorf("the VM printed no probe result (qemu: %v)", runErr)
	}
	res, err := proberun.Decode([]byte(strings.TrimSpace(console[i+len(resultBegin) : j])))
	return res, console, err
}
