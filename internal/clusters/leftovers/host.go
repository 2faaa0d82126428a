// Package leftovers finds and removes what kwc runs left on a host, by run id, without
// the run's memory: every object a run creates carries its id in a form this package
// can check (a name, a label, a marker in its content or environment). It removes
// only what it can prove is kwc's: run ids are checked against the form kwc makes
// before any path or pattern is built from them, a file's content or a process's
// environment must carry the run's marker, and a folder with a mount under it is
// never removed.
package leftovers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/mounts"
	"kwc.dev/kwc/internal/runid"
)

// Runs selects the runs to clean up: one run, or every kwc run.
type Runs struct {
	id  string
	all bool
}

// Run selects one run; id must have the form kwc makes.
func Run(id string) (Runs, error) {
	if err := runid.Check(id); err != nil {
		return Runs{}, err
	}
	return Runs{id: id}, nil
}

// AllRuns selects every kwc run.
func AllRuns() Runs { return Runs{all: true} }

// ID is the selected run, or "" for every run.
func (r Runs) ID() string { return r.id }

// Has reports whether id is a run id the selection takes.
func (r Runs) Has(id string) bool {
	if !runid.Valid(id) {
		return false
	}
	return r.all || id == r.id
}

// Glob is a filepath.Match pattern for the selected ids: the id, or any run id.
func (r Runs) Glob() string {
	if r.all {
		return strings.Repeat("[0-9a-f]", runid.Len)
	}
	return r.id
}

// Removed is one object removed, in words.
type Removed string

// tally gathers what each step removed and every error, so one failure never stops
// the rest of a cleanup.
type tally struct {
	out  []Removed
	errs []error
}

func (t *tally) add(rs []Removed, err error) {
	t.out = append(t.out, rs...)
	if err != nil {
		t.errs = append(t.errs, err)
	}
}

// named adds the names a step removed, each with its kind in front.
func (t *tally) named(kind string, names []string, err error) {
	rs := make([]Removed, 0, len(names))
	for _, n := range names {
		rs = append(rs, Removed(strings.TrimSpace(kind+" "+n)))
	}
	t.add(rs, err)
}

func (t *tally) result() ([]Removed, error) { return t.out, errors.Join(t.errs...) }

// Host removes a run's objects on this host: canary folders and agent state under
// nodeagent.CanaryRoot, /dev/shm entries, SysV shared-memory segments, canary
// processes (and anything they started), keyring keys, loop devices and their work
// folders. It goes on past a failure and reports every one.
func Host(r Runs) ([]Removed, error) {
	var t tally
	// Processes first: a live canary process could re-create nothing, but an agent
	// still holding would answer for the rest.
	t.add(killProcesses(r))
	t.add(removeSysvShm(r))
	t.add(removeCanaryFiles(r))
	t.add(removeShmFiles(r))
	t.add(removeFolderCanaries(r))
	keys, err := nodeagent.RemoveKeys(r.Glob())
	t.named("key", keys, err)
	loops, err := nodeagent.RemoveLoops(r.Glob())
	t.named("loop device", loops, err)
	t.add(removeWorkDirs(r))
	return t.result()
}

// markedRun returns the run id a canary's content starts with ("kwc-canary-<id>:"),
// or "".
func markedRun(content []byte) string {
	prefix := []byte(nodeagent.Marker(""))
	if !bytes.HasPrefix(content, prefix) {
		return ""
	}
	rest := content[len(prefix):]
	i := bytes.IndexByte(rest, ':')
	if i < 0 {
		return ""
	}
	id := string(rest[:i])
	if !runid.Valid(id) {
		return ""
	}
	return id
}

// killProcesses kills every process whose environment carries a selected run's
// canary marker: the canary process and whatever it started, orphaned or not.
func killProcesses(r Runs) ([]Removed, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	self := os.Getpid()
	var out []Removed
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == 1 {
			continue
		}
		id := processRun(pid)
		if id == "" || !r.Has(id) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing canary process %d of run %s: %w", pid, id, err))
			continue
		}
		out = append(out, Removed(fmt.Sprintf("process %d (%s) of run %s", pid, comm(pid), id)))
	}
	return out, errors.Join(errs...)
}

// processRun is the run id in pid's KWC_CANARY variable, or "".
func processRun(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(nodeagent.ProcessEnv+"=")); ok {
			return markedRun(v)
		}
	}
	return ""
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// SysvSegment is one SysV shared-memory segment from /proc/sysvipc/shm.
type SysvSegment struct {
	Key   int
	ID    int
	Bytes int
}

// SysvSegments lists the host's SysV shared-memory segments.
func SysvSegments() ([]SysvSegment, error) {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		return nil, fmt.Errorf("listing SysV shared memory: %w", err)
	}
	defer f.Close()
	var out []SysvSegment
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		key, err1 := strconv.ParseInt(fields[0], 10, 64)
		id, err2 := strconv.Atoi(fields[1])
		size, err3 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, SysvSegment{Key: int(uint32(key)), ID: id, Bytes: size})
	}
	return out, sc.Err()
}

// removeSysvShm removes the segments whose key has kwc's prefix (the run's own key
// when one run is selected) and whose content starts with a selected run's marker.
func removeSysvShm(r Runs) ([]Removed, error) {
	segs, err := SysvSegments()
	if err != nil {
		return nil, err
	}
	var out []Removed
	var errs []error
	for _, s := range segs {
		if s.Key&^0xffff != nodeagent.ShmKeyPrefix || (!r.all && s.Key != nodeagent.ShmKey(r.id)) {
			continue
		}
		b, err := unix.SysvShmAttach(s.ID, 0, unix.SHM_RDONLY)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading SysV segment %d (key %#x): %w", s.ID, s.Key, err))
			continue
		}
		id := markedRun(b)
		_ = unix.SysvShmDetach(b)
		if id == "" || !r.Has(id) {
			continue
		}
		if _, err := unix.SysvShmCtl(s.ID, unix.IPC_RMID, nil); err != nil {
			errs = append(errs, fmt.Errorf("removing SysV segment %d of run %s: %w", s.ID, id, err))
			continue
		}
		out = append(out, Removed(fmt.Sprintf("SysV segment %d (key %#x) of run %s", s.ID, s.Key, id)))
	}
	return out, errors.Join(errs...)
}

// removeCanaryFiles removes <CanaryRoot>/<id>/ and <CanaryRoot>/agent-<id>.json of the
// selected runs, then CanaryRoot itself when nothing else is in it.
func removeCanaryFiles(r Runs) ([]Removed, error) {
	entries, err := os.ReadDir(nodeagent.CanaryRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", nodeagent.CanaryRoot, err)
	}
	var out []Removed
	var errs []error
	for _, e := range entries {
		name := e.Name()
		id := strings.TrimSuffix(strings.TrimPrefix(name, "agent-"), ".json")
		isState := name == "agent-"+id+".json" && e.Type().IsRegular()
		if !r.Has(id) || !(isState || (name == id && e.IsDir())) {
			continue
		}
		p := filepath.Join(nodeagent.CanaryRoot, name)
		if err := mounts.RemoveTree(p); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Removed(p))
	}
	_ = os.Remove(nodeagent.CanaryRoot) // only when empty
	return out, errors.Join(errs...)
}

// removeFolderCanaries removes <folder>/.kwc-canary-<id> from the host folders the
// agent plants in, when the file holds the run's marker.
func removeFolderCanaries(r Runs) ([]Removed, error) {
	var patterns []string
	for _, dir := range nodeagent.HostFolders {
		patterns = append(patterns, filepath.Join(dir, nodeagent.FolderCanaryName(r.Glob())))
	}
	return removeMarkedFiles(r, patterns...)
}

// removeShmFiles removes /dev/shm/kwc-canary-<id> when it holds the run's marker.
func removeShmFiles(r Runs) ([]Removed, error) {
	return removeMarkedFiles(r, "/dev/shm/"+nodeagent.Marker(r.Glob()))
}

// removeMarkedFiles removes the regular files matching the patterns whose content
// starts with a selected run's marker: the proof that a file is a kwc canary.
func removeMarkedFiles(r Runs, patterns ...string) ([]Removed, error) {
	var out []Removed
	var errs []error
	for _, pattern := range patterns {
		matches, _ := filepath.Glob(pattern)
		for _, p := range matches {
			if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
				continue
			}
			if b, err := readHead(p, 64); err != nil || !r.Has(markedRun(b)) {
				continue
			}
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, Removed(p))
		}
	}
	return out, errors.Join(errs...)
}

// removeWorkDirs removes the loop canary's work folder, $TMPDIR/kwc-loop-<id>, and
// the probe's own scratch folder on the node, /tmp/kwc-probe-<id>. The probe mounts
// things there (a killed one leaves them): those mounts are kwc's by where they are,
// so they are detached first, deepest first; a mount that will not go keeps the
// folder.
func removeWorkDirs(r Runs) ([]Removed, error) {
	loops, _ := filepath.Glob(filepath.Join(os.TempDir(), "kwc-loop-"+r.Glob()))
	probes, _ := filepath.Glob("/tmp/kwc-probe-" + r.Glob())
	var out []Removed
	var errs []error
	for _, p := range append(loops, probes...) {
		if st, err := os.Lstat(p); err != nil || !st.IsDir() {
			continue
		}
		if strings.HasPrefix(filepath.Base(p), "kwc-probe-") {
			detached, err := mounts.DetachUnder(p)
			for _, m := range detached {
				out = append(out, Removed("mount "+m))
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := mounts.RemoveTree(p); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Removed(p))
	}
	return out, errors.Join(errs...)
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.Read(b)
	if k > 0 {
		return b[:k], nil
	}
	return nil, err
}
