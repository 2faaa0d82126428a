package nodeagent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"kwc.dev/kwc/internal/probe"
)

// Snapshot is node state a probe could change if it escaped: kernel knobs, cgroup
// release agents, cron, credentials, modules. Mount tables and /run are left out:
// the engine changes them for every container it starts.
type Snapshot map[string]string

// TakeSnapshot records the node's state now.
func TakeSnapshot() Snapshot {
	s := Snapshot{}
	for _, k := range []string{"core_pattern", "modprobe", "hostname", "domainname", "hotplug", "poweroff_cmd"} {
		if b, err := os.ReadFile("/proc/sys/kernel/" + k); err == nil {
			s["sysctl kernel."+k] = strings.TrimSpace(string(b))
		}
	}
	agents, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	for _, a := range agents {
		if b, err := os.ReadFile(a); err == nil {
			s[a] = strings.TrimSpace(string(b))
		}
	}
	for _, f := range []string{"/etc/crontab", "/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/ld.so.preload"} {
		s[f] = fileHash(f)
	}
	for _, d := range []string{"/etc/cron.d", "/etc/cron.hourly", "/etc/sudoers.d", "/root/.ssh"} {
		entries, err := os.ReadDir(d)
		if err != nil {
			s[d+"/"] = "absent"
			continue
		}
		var parts []string
		for _, e := range entries {
			parts = append(parts, e.Name()+"="+fileHash(filepath.Join(d, e.Name())))
		}
		sort.Strings(parts)
		s[d+"/"] = strings.Join(parts, ",")
	}
	s["modules"] = probe.ModulesHash()
	return s
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
