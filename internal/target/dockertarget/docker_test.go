package dockertarget

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/config"
)

// A newcomer without an engine must be told a command that exists (issue 10: the old
// fix line named .ci/engine.sh, which never existed).
func TestPreflightWithoutEngineSaysWhatToRun(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	tg, err := New("kwc-test", "unused")
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Preflight(context.Background())
	if err == nil {
		t.Fatal("Preflight passed with no engine")
	}
	msg := err.Error()
	if !strings.Contains(msg, `eval "$(hack/engine.sh start)"`) {
		t.Errorf("fix line does not name hack/engine.sh start:\n%s", msg)
	}
	for _, word := range strings.Fields(msg) {
		if strings.HasPrefix(word, "hack/") || strings.HasPrefix(word, ".ci/") {
			p := strings.Trim(word, `"()$`)
			if !exists(filepath.Join("..", "..", "..", p)) {
				t.Errorf("fix line names %s, which is not in the repository", p)
			}
		}
	}
}

func exists(p string) bool {
	m, _ := filepath.Glob(p)
	return len(m) > 0
}

// A gVisor lane's nested image stores are tmpfs mounted exec (a noexec store breaks
// every nested container with "exec /bin/sh: permission denied"); other lanes keep
// labelled volumes, so cleanup finds them by run.
func TestImageStoresByStorage(t *testing.T) {
	tg := &Target{runID: "abcdef"}
	sandbox := config.Lane{Name: "gvisor-gitlab", Role: config.RoleSubject, Runtime: "runsc", Isolation: config.IsolationSandbox}
	sandbox.Default()
	hc, err := tg.hostConfig(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/var/lib/docker", "/var/lib/containers"} {
		if opts := hc.Tmpfs[dir]; !strings.Contains(opts, "exec") || strings.Contains(opts, "noexec") {
			t.Errorf("%s: tmpfs options %q, want exec", dir, opts)
		}
	}
	if len(hc.Mounts) != 0 || hc.Runtime != "runsc" {
		t.Errorf("a tmpfs lane has volume mounts %v or runtime %q", hc.Mounts, hc.Runtime)
	}
	runc := config.Lane{Name: "runc-gitlab", Role: config.RoleSubject, Runtime: DefaultRuntime}
	runc.Default()
	hc, err = tg.hostConfig(runc)
	if err != nil {
		t.Fatal(err)
	}
	if len(hc.Tmpfs) != 0 || len(hc.Mounts) != 2 || hc.Mounts[0].VolumeOptions.Labels["dev.kwc.run"] != "abcdef" {
		t.Errorf("a volume lane: tmpfs %v, mounts %+v", hc.Tmpfs, hc.Mounts)
	}
}

// Capabilities and seccomp reach the engine as a lane says, and a lane that says
// nothing keeps the runtime's defaults.
func TestCapabilitiesAndSeccomp(t *testing.T) {
	tg := &Target{runID: "abcdef"}
	l := config.Lane{Name: "shocker", Role: config.RoleSubject, Runtime: DefaultRuntime,
		Capabilities: config.Capabilities{Add: []string{"DAC_READ_SEARCH"}, Drop: []string{"NET_RAW"}}, Seccomp: config.SeccompUnconfined}
	l.Default()
	hc, err := tg.hostConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(hc.CapAdd) != 1 || hc.CapAdd[0] != "DAC_READ_SEARCH" || len(hc.CapDrop) != 1 || !slices.Contains(hc.SecurityOpt, "seccomp=unconfined") {
		t.Fatalf("capAdd %v capDrop %v securityOpt %v", hc.CapAdd, hc.CapDrop, hc.SecurityOpt)
	}
	plain := config.Lane{Name: "runc-gitlab", Role: config.RoleSubject, Runtime: DefaultRuntime}
	plain.Default()
	hc, _ = tg.hostConfig(plain)
	if len(hc.CapAdd)+len(hc.CapDrop)+len(hc.SecurityOpt) != 0 {
		t.Fatalf("a lane that says nothing changed the defaults: %v %v %v", hc.CapAdd, hc.CapDrop, hc.SecurityOpt)
	}
}

// Issue 11: a lane could not say what real workspace pods set. Each option reaches the
// engine as the lane says it.
func TestLaneSecurityOptionsReachTheEngine(t *testing.T) {
	tg := &Target{runID: "abcdef"}
	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	no, uid, gid := false, int64(1234), int64(99)
	l := config.Lane{Name: "hardened", Role: config.RoleSubject, Runtime: DefaultRuntime,
		Seccomp: config.SeccompLocalhost, SeccompProfile: profile, AppArmor: "Localhost/kwc-ws",
		AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: true, RunAsUser: &uid, RunAsGroup: &gid,
		Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}, Devices: []string{"/dev/loop0:r"}}
	l.Default()
	hc, err := tg.hostConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "apparmor=kwc-ws", "no-new-privileges:true"} {
		if !slices.Contains(hc.SecurityOpt, want) {
			t.Errorf("securityOpt %v lacks %s", hc.SecurityOpt, want)
		}
	}
	if !hc.ReadonlyRootfs || hc.Tmpfs["/tmp"] == "" || hc.Tmpfs["/run"] == "" || !strings.Contains(hc.Tmpfs["/tmp"], "exec") {
		t.Errorf("read-only root: %v, scratch %v", hc.ReadonlyRootfs, hc.Tmpfs)
	}
	if hc.Sysctls["kernel.shm_rmid_forced"] != "1" {
		t.Errorf("sysctls %v", hc.Sysctls)
	}
	if len(hc.Devices) != 1 || hc.Devices[0].CgroupPermissions != "r" || hc.Devices[0].PathOnHost != "/dev/loop0" {
		t.Errorf("devices %+v", hc.Devices)
	}
	if u := userSpec(l); u != "1234:99" {
		t.Errorf("user %q", u)
	}
	l.Seccomp, l.SeccompProfile = config.SeccompLocalhost, filepath.Join(t.TempDir(), "missing.json")
	if _, err := tg.hostConfig(l); err == nil || !strings.Contains(err.Error(), "seccompProfile") {
		t.Errorf("a missing profile: %v", err)
	}
	// The node's root disk, named whatever this host calls it.
	disk, err := rootDisk()
	if err != nil || !strings.HasPrefix(disk, "/dev/") {
		t.Fatalf("root disk %q: %v", disk, err)
	}
	if !versionLess("1.41", "1.43") || versionLess("1.43", "1.43") || versionLess("1.50", "1.43") {
		t.Error("versionLess")
	}
}
