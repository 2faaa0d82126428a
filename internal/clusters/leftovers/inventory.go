package leftovers

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/mounts"
)

// Inventory lists what a run could leave on this host and its engine, one line per
// object, sorted: every container and volume, SysV segment, /dev/shm entry, loop
// device, key in root's user keyring, mount point, network interface, kwc folder under
// the canary root and the temporary directory, cgroup named for kwc, and orphaned or
// kwc-marked process started since since (a process that was already running when a
// run began, and was orphaned by something else, is not the run's). Two inventories
// taken around a run differ only by what the run left (the fault test compares them).
func Inventory(ctx context.Context, engine *client.Client, since time.Time) ([]string, error) {
	var out []string
	add := func(kind string, items ...string) {
		for _, it := range items {
			out = append(out, kind+" "+it)
		}
	}
	if engine != nil {
		cs, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			return nil, fmt.Errorf("listing containers: %w", err)
		}
		for _, c := range cs.Items {
			add("container", strings.Join(c.Names, ",")+" "+c.ID[:12])
		}
		vs, err := engine.VolumeList(ctx, client.VolumeListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing volumes: %w", err)
		}
		for _, v := range vs.Items {
			add("volume", v.Name)
		}
	}
	segs, err := SysvSegments()
	if err != nil {
		return nil, err
	}
	for _, s := range segs {
		add("sysv-shm", fmt.Sprintf("key=%#x id=%d", s.Key, s.ID))
	}
	add("dev-shm", names("/dev/shm", "")...)
	for _, dir := range nodeagent.HostFolders {
		add("folder-canary", names(dir, nodeagent.FolderCanaryName(""))...)
	}
	add("canary-root", names(nodeagent.CanaryRoot, "")...)
	add("tmp", names(os.TempDir(), "kwc")...)
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			add("loop", filepath.Base(filepath.Dir(filepath.Dir(f)))+" "+strings.TrimSpace(string(b)))
		}
	}
	add("key", userKeys()...)
	all, err := mounts.Under("/")
	if err != nil {
		return nil, err
	}
	add("mount", all...)
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, i := range ifs {
		add("interface", i.Name)
	}
	add("cgroup", kwcCgroups()...)
	add("process", processes(since)...)
	sort.Strings(out)
	return out, nil
}

// Diff lists what is in after and not in before.
func Diff(before, after []string) []string {
	had := map[string]bool{}
	for _, b := range before {
		had[b] = true
	}
	var out []string
	for _, a := range after {
		if !had[a] {
			out = append(out, a)
		}
	}
	return out
}

func names(dir, prefix string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func userKeys() []string {
	buf := make([]byte, 4096)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, unix.KEY_SPEC_USER_KEYRING, buf, 0)
	if err != nil {
		return nil
	}
	n = min(n, len(buf))
	var out []string
	for i := 0; i+4 <= n; i += 4 {
		id := int(binary.NativeEndian.Uint32(buf[i:]))
		if desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id); err == nil {
			out = append(out, desc)
		}
	}
	return out
}

// kwcCgroups lists cgroup folders whose name mentions kwc, three levels deep.
func kwcCgroups() []string {
	var out []string
	root := "/sys/fs/cgroup"
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(strings.TrimPrefix(p, root), "/") > 3 {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), "kwc") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// processes lists processes that carry a kwc canary marker or were orphaned (their
// parent is init): a process a run started and lost ends up as one of these.
func processes(since time.Time) []string {
	entries, _ := os.ReadDir("/proc")
	boot := bootTime()
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		if st, ok := started(pid, boot); ok && st.Before(since) {
			continue
		}
		marked := processRun(pid) != ""
		if !marked && parent(pid) != 1 {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", pid, comm(pid)))
	}
	return out
}

// bootTime is when the kernel booted, from /proc/stat's btime.
func bootTime() time.Time {
	b, _ := os.ReadFile("/proc/stat")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// started is when pid started: field 22 of its stat, in clock ticks since boot (100
// a second on Linux).
func started(pid int, boot time.Time) (time.Time, bool) {
	f := statFields(pid)
	if len(f) < 20 || boot.IsZero() {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return boot.Add(time.Duration(ticks) * time.Second / 100), true
}

// statFields are the fields of /proc/<pid>/stat after the command name (state first).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func parent(pid int) int {
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	f := statFields(pid)
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
