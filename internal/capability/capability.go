// Package capability names Linux capabilities and reads capability sets from
// /proc/<pid>/status, with the kernel's own cap_last_cap rather than a fixed mask.
package capability

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Names are the capability names by number (linux/capability.h).
var Names = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

// Sets are a process's capability sets.
type Sets struct{ Inh, Prm, Eff, Bnd, Amb uint64 }

// ReadSelf reads this process's sets.
func ReadSelf() (Sets, error) { return ReadStatus("/proc/self/status") }

// ReadStatus reads the Cap* lines of a /proc/<pid>/status file.
func ReadStatus(path string) (Sets, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sets{}, err
	}
	defer f.Close()
	var s Sets
	fields := map[string]*uint64{"CapInh:": &s.Inh, "CapPrm:": &s.Prm, "CapEff:": &s.Eff, "CapBnd:": &s.Bnd, "CapAmb:": &s.Amb}
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if p, known := fields[k]; ok && known {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return Sets{}, fmt.Errorf("%s %s: %w", path, k, err)
			}
			*p = n
			found++
		}
	}
	if found < 4 {
		return Sets{}, fmt.Errorf("%s: no capability lines", path)
	}
	return s, sc.Err()
}

// LastCap is the kernel's highest capability number.
func LastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(Names) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(Names) - 1
	}
	return n
}

// Full is the mask of every capability this kernel knows.
func Full() uint64 {
	last := LastCap()
	if last >= 63 {
		return ^uint64(0)
	}
	return (uint64(1) << (last + 1)) - 1
}

// NamesOf lists the names of the bits set in mask.
func NamesOf(mask uint64) []string {
	var out []string
	for i := 0; i < 64; i++ {
		if mask&(1<<i) == 0 {
			continue
		}
		if i < len(Names) {
			out = append(out, Names[i])
		} else {
			out = append(out, "CAP_"+strconv.Itoa(i))
		}
	}
	return out
}

// MissingFromBounding names the capabilities the kernel knows but this process's
// bounding set lacks.
func MissingFromBounding() []string {
	s, err := ReadSelf()
	if err != nil {
		return nil
	}
	return NamesOf(Full() &^ s.Bnd)
}
