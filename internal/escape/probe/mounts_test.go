package probe

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// Issue 11: P04 only looked for the canary under CanaryRoot, so a mount of the host's
// /etc or /var/log was never examined. A folder canary in a mounted host folder is
// found through that mount.
func TestMountedHostFolderExposesItsCanary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("bind mounts need root (make test runs as root)")
	}
	hostFolder := t.TempDir() // stands in for the host's /etc
	canary := filepath.Join(hostFolder, ".kwc-canary-abcdef")
	if err := os.WriteFile(canary, []byte("kwc-canary-abcdef:tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inWorkspace := t.TempDir()
	if err := unix.Mount(hostFolder, inWorkspace, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inWorkspace, unix.MNT_DETACH) })
	o := &obs{Observation: probespec.Observation{ID: "P04-mounted-host-file", Status: probespec.Observed}}
	mountedHostFile(context.Background(), probespec.Spec{CanaryPath: "/nonexistent/kwc/canary", FolderCanaries: []string{canary}}, o)
	if o.Status != probespec.Observed {
		t.Fatalf("status %s: %s", o.Status, o.Reason)
	}
	through := false
	for _, e := range o.Evidence {
		through = through || strings.Contains(e, "through the mount at "+inWorkspace)
	}
	if !through || len(o.Candidates) == 0 || !strings.Contains(o.Candidates[0], "tok") {
		t.Fatalf("the folder canary was not read through the bind mount: candidates %q evidence %q", o.Candidates, o.Evidence)
	}
}

// Issue 11: a mountinfo root names a folder of the filesystem a mount comes from, not
// of the node's tree: a folder of a separate /var partition, a virtio-fs share or a
// volume never has the canary's node path under it. P04 walks every mount for the
// marker's name and finds the canary however the folder was mounted.
func TestCanaryFoundInAMountWhoseRootIsNotItsNodePath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting needs root (make test runs as root)")
	}
	inWorkspace := t.TempDir()
	// A filesystem of its own, as a separate /var partition is: its root is "/".
	if err := unix.Mount("kwc-test", inWorkspace, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(inWorkspace, unix.MNT_DETACH) })
	deep := filepath.Join(inWorkspace, "lib", "app")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, ".kwc-canary-unitroot"), []byte("kwc-canary-unitroot:tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &obs{Observation: probespec.Observation{ID: "P04-mounted-host-file", Status: probespec.Observed}}
	spec := probespec.Spec{Marker: "kwc-canary-unitroot", CanaryPath: "/var/lib/kwc-canary/unitroot/canary",
		FolderCanaries: []string{"/var/lib/app/.kwc-canary-unitroot"}}
	mountedHostFile(context.Background(), spec, o)
	if o.Status != probespec.Observed || len(o.Candidates) != 1 || !strings.Contains(o.Candidates[0], "tok") {
		t.Fatalf("status %s (%s), candidates %q, evidence %q", o.Status, o.Reason, o.Candidates, o.Evidence)
	}
}

// A disk's identity is the hash of its first bytes, read-only; a blank start
// identifies nothing (every empty disk shares it).
func TestDiskIDReadsOnlyTheStart(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	b := make([]byte, 3*diskIDBytes)
	copy(b, "partition table")
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := diskID(img)
	if err != nil || a == "" {
		t.Fatalf("%q %v", a, err)
	}
	b[diskIDBytes+1] = 'x' // past the identifying bytes: same identity
	os.WriteFile(img, b, 0o600)
	if again, _ := diskID(img); again != a {
		t.Fatal("bytes past the first 64 KiB changed the identity")
	}
	blank := filepath.Join(dir, "blank.img")
	os.WriteFile(blank, make([]byte, diskIDBytes), 0o600)
	if id, err := diskID(blank); err != nil || id != "" {
		t.Fatalf("a blank disk must identify nothing: %q %v", id, err)
	}
}

// A host /proc mounted anywhere in the workspace shows the host's processes: P05
// must search every procfs, not only the workspace's own.
func TestMarkerProcsSearchesEveryProcfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a procfs needs root; make test runs as root")
	}
	marker := "kwc-canary-unit-procfs"
	cmd := exec.Command("sh", "-c", "read _ignored", marker)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	dir := filepath.Join(t.TempDir(), "host-proc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", dir, "proc", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mounting a procfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	o := &obs{}
	got := markerProcs(marker, o)
	want := fmt.Sprint(cmd.Process.Pid)
	var inProc, inMount bool
	for _, d := range got {
		inProc = inProc || d == "/proc/"+want
		inMount = inMount || d == filepath.Join(dir, want)
	}
	if !inProc || !inMount {
		t.Fatalf("found %v; want the marked process in /proc and in %s", got, dir)
	}
}

// Issue 11: P03 read the kernel log only through syslog(2), which a runtime refuses
// without CAP_SYSLOG, while a kmsg node (a host /dev mounted, /dev/kmsg passed in)
// reads it as a file. The devtmpfs mounted here is the node's own, as a hostPath
// /dev is: P03 finds the kmsg node in it by number and reads the marker line.
func TestKernelLogIsReadThroughAnyKmsgNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a devtmpfs needs root (make test runs as root)")
	}
	hostDev := t.TempDir()
	if err := unix.Mount("devtmpfs", hostDev, "devtmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(hostDev, unix.MNT_DETACH) })
	marker := fmt.Sprintf("kwc-canary-unitkmsg%d", os.Getpid())
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%s:tok\n", marker)
	f.Close()

	ms, err := mounts()
	if err != nil {
		t.Fatal(err)
	}
	roots := deviceRoots(ms)
	if !slices.Contains(roots, hostDev) {
		t.Fatalf("device roots %v lack the devtmpfs at %s", roots, hostDev)
	}
	w := newWalker(probespec.Spec{})
	var kmsg string
	for _, n := range devNodes([]string{hostDev}, w) {
		if !n.block && n.rdev == kmsgRdev {
			kmsg = n.path
		}
	}
	if kmsg == "" {
		t.Fatalf("no 1:11 node found in %s", hostDev)
	}
	text, err := readKmsg(kmsg)
	if err != nil || !strings.Contains(text, marker+":tok") {
		t.Fatalf("reading %s: %v; the marker line is not in %d bytes", kmsg, err, len(text))
	}
}

// Issue 15: on a kind node the canary lies on a folder of the host's disk (the
// node's /var volume), so the filesystem's root plus the node path finds nothing.
// P19 opens it by its own handle through any mount of that filesystem.
func TestOpenByHandleFindsTheCanaryWhereverItsFilesystemIsMounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("open_by_handle_at needs CAP_DAC_READ_SEARCH (make test runs as root)")
	}
	// Somewhere on the root filesystem that is not the node path the spec names.
	dir, err := os.MkdirTemp("/var/tmp", "kwc-handle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "canary")
	if err := os.WriteFile(p, []byte("kwc-canary-unithandle:tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatalf("this filesystem gives no handles: %v", err)
	}
	spec := probespec.Spec{Marker: "kwc-canary-unithandle", CanaryPath: "/var/lib/kwc-canary/unithandle/canary"}
	o := &obs{Observation: probespec.Observation{ID: "P19-open-by-handle", Status: probespec.Observed}}
	openByHandle(context.Background(), spec, o)
	if len(o.Candidates) != 0 {
		t.Fatalf("without the handle the path alone found %q", o.Candidates)
	}
	spec.CanaryHandle = &probespec.FileHandle{Type: h.Type(), Bytes: h.Bytes()}
	o = &obs{Observation: probespec.Observation{ID: "P19-open-by-handle", Status: probespec.Observed}}
	openByHandle(context.Background(), spec, o)
	if !slices.ContainsFunc(o.Candidates, func(c string) bool { return strings.Contains(c, "tok") }) {
		t.Fatalf("the canary's handle did not open it: candidates %q, evidence %q", o.Candidates, o.Evidence)
	}
}
