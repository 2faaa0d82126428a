package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// Two facts no file can stand in for: a bind mount can mask boot_id or
	// /proc/version, but not what the kernel answers to uname(2) and sysinfo(2).
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		f[probespec.FactUname] = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		f[probespec.FactBootTime] = strconv.FormatInt(time.Now().Unix()-int64(si.Uptime), 10)
	}
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

// kernelIDFacts records, for a probe judged by the same-kernel rules, the facts that
// say which kernel it ran on.
func kernelIDFacts(o *obs) {
	f := KernelFacts()
	for _, k := range []string{probespec.FactBootID, probespec.FactUname, probespec.FactBootTime} {
		if f[k] != "" {
			o.fact(k, f[k])
		}
	}
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
	kernelIDFacts(o)
	o.fact("modulesHash", ModulesHash())
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

// writableSysctl reads a kernel knob (rel under a procfs, "sys/kernel/core_pattern")
// in every procfs the workspace sees and tries to open each for writing, without
// writing: a host /proc mounted read-write beside the workspace's own read-only one
// holds the same knob, writable.
func writableSysctl(o *obs, rel string) {
	kernelIDFacts(o)
	var writable []string
	exists := false
	for _, root := range procfsRoots(o) {
		path := filepath.Join(root, rel)
		v, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		exists = true
		if err != nil {
			o.logf("read %s: %v", path, err)
			continue
		}
		if o.Facts["value"] == "" {
			o.fact("value", strings.TrimSpace(string(v)))
		}
		if canOpenForWrite(o, path) {
			writable = append(writable, path)
		}
	}
	if !exists {
		o.notApplicable("/proc/" + rel + " does not exist on this kernel (built without the feature)")
		return
	}
	o.fact("writable", strconv.FormatBool(len(writable) > 0))
	if len(writable) > 0 {
		o.fact("writableAt", strings.Join(writable, " "))
	}
}

// openForWrite records whether path can be opened for writing, and writes nothing:
// the open passes every permission check a write would.
func openForWrite(o *obs, path string) {
	o.fact("writable", strconv.FormatBool(canOpenForWrite(o, path)))
}

func canOpenForWrite(o *obs, path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		o.logf("open %s for writing: %v", path, err)
		return false
	}
	f.Close()
	o.logf("open %s for writing: allowed (nothing written)", path)
	return true
}
