package probe

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// CgroupMode says how /sys/fs/cgroup is mounted: v2 (unified), v1 or hybrid.
func CgroupMode() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		return "hybrid"
	}
	return "v1"
}

// v1Subsystems lists the enabled v1 subsystems from /proc/cgroups.
func v1Subsystems() []string {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	return out
}

// cgroupV1Knob mounts a v1 hierarchy in the run's temporary directory (in this
// context's own mount namespace), checks whether knob may be written, and unmounts.
// Nothing is written. subsystem "" takes the first enabled one.
func cgroupV1Knob(s probespec.Spec, o *obs, subsystem, knob string) {
	kernelIDFacts(o)
	mode := CgroupMode()
	o.fact("cgroupMode", mode)
	// A v1 hierarchy already mounted in the workspace (the node's /sys/fs/cgroup bound
	// read-write) holds the knob at its root: no mount of its own is needed.
	if ms, err := mounts(); err == nil {
		for _, m := range ms {
			if m.fstype != "cgroup" || m.root != "/" {
				continue
			}
			p := filepath.Join(m.point, knob)
			if _, err := os.Stat(p); err == nil && canOpenForWrite(o, p) {
				o.fact("writable", "true")
				o.fact("writableAt", p)
				return
			}
		}
	}
	subs := v1Subsystems()
	if mode == "v2" || len(subs) == 0 {
		o.notApplicable("cgroup v2 only: no v1 hierarchy, so no " + knob)
		return
	}
	if subsystem == "" {
		subsystem = subs[0]
		for _, c := range []string{"rdma", "memory", "cpuset"} {
			for _, have := range subs {
				if have == c {
					subsystem = c
					goto chosen
				}
			}
		}
	}
chosen:
	o.fact("subsystem", subsystem)
	dir := filepath.Join(s.TempDir, "cg-"+subsystem)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		o.fail("creating %s: %v", dir, err)
		return
	}
	defer os.Remove(dir)
	if err := unix.Mount("kwc-probe", dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, subsystem); err != nil {
		o.logf("mount -t cgroup -o %s: %v", subsystem, err)
		o.fact("writable", "false")
		return
	}
	defer func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			o.logf("unmount %s: %v", dir, err)
		}
	}()
	p := filepath.Join(dir, knob)
	if _, err := os.Stat(p); err != nil {
		o.logf("mounted the %s hierarchy; %s: %v", subsystem, knob, err)
		if knob == "release_agent" && os.IsNotExist(err) {
			// The kernel shows release_agent only at the root of the initial cgroup
			// namespace. A mount that succeeded without it was made in another one (a
			// kind node's, say): there is no release_agent to reach from here, and none
			// anywhere in this namespace.
			o.notApplicable("mounted the " + subsystem + " hierarchy, but release_agent is shown only in the initial cgroup namespace and this is not it")
			return
		}
		o.fact("writable", "false")
		return
	}
	if err := unix.Access(p, unix.W_OK); err != nil {
		o.logf("access(%s, W_OK): %v", knob, err)
		o.fact("writable", "false")
		return
	}
	o.logf("mounted the %s hierarchy in the probe's own directory", subsystem)
	openForWrite(o, p)
}
