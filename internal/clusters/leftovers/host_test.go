package leftovers

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/runid"
)

// A child process that plants a run's canaries and waits to be killed: the harness of
// a run that dies with SIGKILL.
func TestMain(m *testing.M) {
	if id := os.Getenv("KWC_LEFTOVERS_PLANT"); id != "" {
		p, err := nodeagent.Plant(nodeagent.Options{RunID: id, Folders: nodeagent.HostFolders})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("planted", strings.Join(p.Inventory(), "; "))
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test plants canaries on the host and needs root (make test runs as root)")
	}
}

// plantAndKill starts a child that plants run id's canaries, then SIGKILLs it: no
// deferred removal runs, as when a run is killed.
func plantAndKill(t *testing.T, id string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KWC_LEFTOVERS_PLANT="+id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "planted") {
		_ = cmd.Process.Kill()
		t.Fatalf("the child did not plant: %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	time.Sleep(200 * time.Millisecond) // let PDEATHSIG and EOF reach the canary process
}

// What the SIGKILL left of run id, by every way Host looks for it.
func leftOf(t *testing.T, id string) []string {
	t.Helper()
	var left []string
	segs, err := SysvSegments()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.Key == nodeagent.ShmKey(id) {
			left = append(left, fmt.Sprintf("SysV segment %d", s.ID))
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && processRun(pid) == id {
			left = append(left, fmt.Sprintf("process %d (%s)", pid, comm(pid)))
		}
	}
	for _, p := range []string{filepath.Join(nodeagent.CanaryRoot, id), "/dev/shm/" + nodeagent.Marker(id), filepath.Join(os.TempDir(), "kwc-loop-"+id)} {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, p)
		}
	}
	for _, dir := range nodeagent.HostFolders {
		if p := filepath.Join(dir, nodeagent.FolderCanaryName(id)); exists(p) {
			left = append(left, p)
		}
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), "kwc-loop-"+id) {
			left = append(left, "loop "+f)
		}
	}
	return left
}

// Issue 10: killed with SIGKILL, a run left its SysV segment (holding the secret) and
// the canary process's orphaned child. Cleanup by run id must find every object
// without the run's memory.
func TestHostCleanupAfterSIGKILL(t *testing.T) {
	needRoot(t)
	id := runid.New()
	plantAndKill(t, id)
	t.Cleanup(func() { _, _ = Host(Runs{id: id}) })
	before := leftOf(t, id)
	hasSysv := false
	for _, l := range before {
		hasSysv = hasSysv || strings.HasPrefix(l, "SysV")
	}
	hasFolder := false
	for _, l := range before {
		hasFolder = hasFolder || strings.HasPrefix(l, "/etc/")
	}
	if !hasSysv || !hasFolder {
		t.Fatalf("the killed run left no SysV segment, so this test proves nothing; left: %v", before)
	}
	for _, l := range before {
		if strings.HasPrefix(l, "process") {
			t.Errorf("the canary process outlived its harness: %s", l)
		}
	}
	r, err := Run(id)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := Host(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("removed: %v", removed)
	if left := leftOf(t, id); len(left) > 0 {
		t.Fatalf("after cleanup, run %s still left: %v", id, left)
	}
}

// A process carrying a run's marker (a child the canary started, say) is found by its
// environment and killed.
func TestHostCleanupKillsMarkedProcesses(t *testing.T) {
	needRoot(t)
	id := runid.New()
	cmd := exec.Command("sleep", "600")
	cmd.Env = []string{nodeagent.ProcessEnv + "=" + nodeagent.Content(id, "secret")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	removed, err := Host(Runs{id: id})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		pid := cmd.Process.Pid
		state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		_ = cmd.Process.Kill()
		t.Fatalf("the marked process %d was not killed (its run as read: %q; removed: %v)\n%s", pid, processRun(pid), removed, state)
	}
}

// Hostile run ids never reach a path or a pattern.
func TestRunRejectsHostileIDs(t *testing.T) {
	for _, id := range []string{"", "..", "../../..", "/", "*", "?*", "[0-9a-f]*", "abc\ndef", strings.Repeat("f", 1000), "ab*def"} {
		if _, err := Run(id); err == nil {
			t.Errorf("Run(%q) was accepted", id)
		}
	}
}

// Objects that look like kwc's but are not (no marker, a folder with a mount under it)
// survive the cleanup of their run. The test cleans up its own run only: cleaning up
// every run here would take the live canaries of a kwc run on the same host.
func TestHostCleanupLeavesWhatIsNotKwcs(t *testing.T) {
	needRoot(t)
	id := runid.New()
	// A /dev/shm entry with kwc's name but someone else's content.
	shm := "/dev/shm/" + nodeagent.Marker(id)
	if err := os.WriteFile(shm, []byte("not a canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shm)
	// A SysV segment with kwc's key but foreign content.
	seg, err := unix.SysvShmGet(nodeagent.ShmKey(id), 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = unix.SysvShmCtl(seg, unix.IPC_RMID, nil) }()
	b, err := unix.SysvShmAttach(seg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, "someone else's data")
	_ = unix.SysvShmDetach(b)
	// A run's folder with a mount under it.
	mounted := filepath.Join(nodeagent.CanaryRoot, id, "m")
	if err := os.MkdirAll(mounted, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(filepath.Dir(keep), mounted, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = unix.Unmount(mounted, unix.MNT_DETACH)
		_ = os.RemoveAll(filepath.Join(nodeagent.CanaryRoot, id))
	}()

	runs, err := Run(id)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := Host(runs)
	if err == nil || !strings.Contains(err.Error(), "is mounted under it") {
		t.Errorf("cleanup did not refuse the folder with a mount under it: %v", err)
	}
	for _, r := range removed {
		if strings.Contains(string(r), id) {
			t.Errorf("removed something that is not kwc's: %s", r)
		}
	}
	if _, err := os.Stat(shm); err != nil {
		t.Errorf("the foreign /dev/shm entry was removed: %v", err)
	}
	if _, err := unix.SysvShmGet(nodeagent.ShmKey(id), 0, 0); err != nil {
		t.Errorf("the foreign SysV segment was removed: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file behind a mount was removed: %v", err)
	}
	if !bytes.Equal(mustRead(t, keep), []byte("x")) {
		t.Error("a file behind a mount was changed")
	}
}

// cleanup --all takes only names of the form kwc makes: a folder named otherwise is never
// selected, however it is spelled.
func TestAllRunsTakesOnlyRunIDs(t *testing.T) {
	all := AllRuns()
	id := runid.New()
	if !all.Has(id) {
		t.Errorf("every run does not take the run id %q", id)
	}
	for _, name := range []string{"notarun", "", "..", "../etc", "ABCDEF", id + "0", id[1:], "*"} {
		if all.Has(name) {
			t.Errorf("every run takes %q, which is not a run id", name)
		}
		if ok, _ := filepath.Match(all.Glob(), name); ok {
			t.Errorf("the glob of every run matches %q, which is not a run id", name)
		}
	}
	one, err := Run(id)
	if err != nil {
		t.Fatal(err)
	}
	if other := runid.New(); one.Has(other) {
		t.Errorf("run %s takes another run %s", id, other)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
