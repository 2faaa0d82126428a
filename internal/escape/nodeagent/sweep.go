package nodeagent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/probe"
)

// Snapshot is node state a probe could change if it escaped: kernel knobs, cgroup
// release agents, cron, credentials, modules. Mount tables and /run are left out:
// the engine changes them for every container it starts.
type Snapshot map[string]string

// TakeSnapshot records the node's state now, from the node's own root.
func TakeSnapshot() (Snapshot, error) { return TakeSnapshotAt("/") }

// KataGuestAssets are where Kata keeps the guest kernels and images every VM boots: a
// write there reaches every later workspace.
var KataGuestAssets = []string{"/opt/kata/share/kata-containers/*"}

// TakeSnapshotAt records the state of the node whose root filesystem is at root (the
// agent's read-only mount of it). Keys are node paths, whatever root is. A root whose
// /etc/passwd cannot be read is an error: a blind snapshot would compare equal and
// pass.
func TakeSnapshotAt(root string) (Snapshot, error) {
	at := func(p string) string { return filepath.Join(root, p) }
	s := Snapshot{}
	for _, k := range []string{"core_pattern", "modprobe", "hostname", "domainname", "hotplug", "poweroff_cmd"} {
		if b, err := os.ReadFile("/proc/sys/kernel/" + k); err == nil {
			s["sysctl kernel."+k] = strings.TrimSpace(string(b))
		}
	}
	agents, _ := filepath.Glob(at("/sys/fs/cgroup/*/release_agent"))
	for _, a := range agents {
		if b, err := os.ReadFile(a); err == nil {
			s[nodePath(root, a)] = strings.TrimSpace(string(b))
		}
	}
	for _, f := range []string{"/etc/crontab", "/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/ld.so.preload"} {
		s[f] = fileHash(at(f))
	}
	for _, pattern := range KataGuestAssets {
		files, _ := filepath.Glob(at(pattern))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
				s["kata asset "+nodePath(root, f)] = fileHash(f)
			}
		}
	}
	for _, d := range []string{"/etc/cron.d", "/etc/cron.hourly", "/etc/sudoers.d", "/root/.ssh"} {
		entries, err := os.ReadDir(at(d))
		if err != nil {
			s[d+"/"] = "absent"
			continue
		}
		var parts []string
		for _, e := range entries {
			parts = append(parts, e.Name()+"="+fileHash(filepath.Join(at(d), e.Name())))
		}
		sort.Strings(parts)
		s[d+"/"] = strings.Join(parts, ",")
	}
	s["modules"] = probe.ModulesHash()
	if h := s["/etc/passwd"]; h == "absent" || h == "unreadable" {
		return nil, fmt.Errorf("the node's root at %s cannot be read (/etc/passwd is %s): its state cannot be compared", root, h)
	}
	return s, nil
}

func fileHash(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return "absent"
		}
		return "unreadable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Diff lists what changed between two snapshots.
func Diff(before, after Snapshot) []string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if before[k] != after[k] {
			out = append(out, fmt.Sprintf("%s: %q -> %q", k, before[k], after[k]))
		}
	}
	sort.Strings(out)
	return out
}

// RemoveKeys invalidates the canary keys of runs matching pattern (a run id, or * for
// all) in root's user keyring, which a killed agent leaves behind.
func RemoveKeys(pattern string) ([]string, error) {
	buf := make([]byte, 4096)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, unix.KEY_SPEC_USER_KEYRING, buf, 0)
	if err != nil {
		return nil, fmt.Errorf("reading root's user keyring: %w", err)
	}
	n = min(n, len(buf))
	var removed []string
	for i := 0; i+4 <= n; i += 4 {
		id := int(binary.NativeEndian.Uint32(buf[i:]))
		desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
		if err != nil {
			continue
		}
		parts := strings.Split(desc, ";")
		name := parts[len(parts)-1]
		if ok, _ := filepath.Match(Marker(pattern), name); !ok || parts[0] != "user" {
			continue
		}
		if _, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); err != nil {
			return removed, fmt.Errorf("invalidating key %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// RemoveLoops detaches the canary loop devices of runs matching pattern (a run id, or
// * for all), found by their backing file's name: a killed agent in a container leaves
// a backing path that only existed inside it.
func RemoveLoops(pattern string) ([]string, error) {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var removed []string
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		backing := strings.TrimSpace(string(b))
		dir := filepath.Base(filepath.Dir(backing))
		if ok, _ := filepath.Match("kwc-loop-"+pattern, dir); !ok {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))
		if err := detachLoop(dev); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dev+" ("+backing+")")
	}
	return removed, errors.Join(errs...)
}
