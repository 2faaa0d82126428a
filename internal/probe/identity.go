package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// KernelFacts are the facts that say which kernel this is. The node agent records the
// same on the node, so the harness can compare.
func KernelFacts() map[string]string {
	f := map[string]string{}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		f["bootID"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/version"); err == nil {
		f["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_uuid"); err == nil {
		f["productUUID"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				f["memTotal"] = strings.TrimSpace(v)
			}
		}
	}
	f["cpus"] = strconv.Itoa(runtime.NumCPU())
	f["modulesHash"] = ModulesHash()
	return f
}

// ModulesHash is a hash of the loaded modules' names, or "absent" when the kernel has
// no module support (no /proc/modules).
func ModulesHash() string {
	b, err := os.ReadFile("/proc/modules")
	if errors.Is(err, os.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	sort.Strings(names)
	sum := sha256.Sum256([]byte(strings.Join(names, "\n")))
	return strconv.Itoa(len(names)) + ":" + hex.EncodeToString(sum[:8])
}

func kernelIdentity(_ context.Context, _ probespec.Spec, o *obs) {
	for k, v := range KernelFacts() {
		o.fact(k, v)
	}
	o.logf("boot_id %s", o.Facts["bootID"])
	o.logf("kernel %s", o.Facts["kernel"])
	if _, ok := o.Facts["productUUID"]; !ok {
		o.logf("product_uuid unreadable (root-only, or no DMI)")
	}
}

func kernelModules(_ context.Context, _ probespec.Spec, o *obs) {
	for k, v := range KernelFacts() {
		if k == "bootID" || k == "modulesHash" {
			o.fact(k, v)
		}
	}
	o.logf("modules %s", o.Facts["modulesHash"])
	// finit_module on fd -1 never loads anything: EBADF means the call got past the
	// permission checks, EPERM that the runtime (capability or seccomp) stopped it.
	err := unix.FinitModule(-1, "", 0)
	errno := "none"
	var e unix.Errno
	if errors.As(err, &e) {
		errno = unix.ErrnoName(e)
	}
	o.fact("finitModuleErrno", errno)
	o.logf("finit_module(-1) -> %s", errno)
}

// writableKnob reads a kernel knob and tries to open it for writing, without writing.
func writableKnob(o *obs, path string) {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		o.fact("bootID", strings.TrimSpace(string(b)))
	}
	v, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		o.notApplicable(path + " does not exist on this kernel (built without the feature)")
		return
	}
	if err != nil {
		o.logf("read %s: %v", path, err)
		o.fact("writable", "false")
		return
	}
	o.fact("value", strings.TrimSpace(string(v)))
	openForWrite(o, path)
}

// openForWrite records whether path can be opened for writing, and writes nothing:
// the open passes every permission check a write would.
func openForWrite(o *obs, path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		o.logf("open %s for writing: %v", path, err)
		o.fact("writable", "false")
		return
	}
	f.Close()
	o.logf("open %s for writing: allowed (nothing written)", path)
	o.fact("writable", "true")
}
