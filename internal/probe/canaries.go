package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// Challenge asks a canary listener to prove it holds the secret: the probe sends a
// fresh nonce and brings back the answer; only the harness can check it.
func Challenge(conn net.Conn, o *obs, where string) {
	nonceB := make([]byte, 16)
	_, _ = rand.Read(nonceB)
	nonce := hex.EncodeToString(nonceB)
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "KWC-CHALLENGE %s\n", nonce); err != nil {
		o.logf("%s: sending the challenge: %v", where, err)
		return
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		o.logf("%s: reading the answer: %v", where, err)
		return
	}
	o.logf("%s: answered the challenge", where)
	o.candidate("challenge:" + nonce + ":" + strings.TrimSpace(line))
}

func loopbackChallenge(ctx context.Context, s probespec.Spec, o *obs) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.LoopbackPort))
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		o.logf("connect %s: %v", addr, err)
		return
	}
	defer conn.Close()
	Challenge(conn, o, addr)
}

func abstractSocket(ctx context.Context, s probespec.Spec, o *obs) {
	b, err := os.ReadFile("/proc/net/unix")
	if err == nil {
		listed := bytes.Contains(b, []byte("@"+s.AbstractSocket))
		o.fact("listedInProcNetUnix", strconv.FormatBool(listed))
		o.logf("/proc/net/unix lists @%s: %v", s.AbstractSocket, listed)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "unix", "@"+s.AbstractSocket)
	if err != nil {
		o.logf("connect @%s: %v", s.AbstractSocket, err)
		return
	}
	defer conn.Close()
	Challenge(conn, o, "@"+s.AbstractSocket)
}

// procfsRoots are every procfs the workspace can see: its own /proc and any other
// mounted anywhere (a host /proc given to a monitoring sidecar, say), whose process
// list is the host's.
func procfsRoots(o *obs) []string {
	roots := []string{"/proc"}
	ms, err := mounts()
	if err != nil {
		o.logf("reading mountinfo: %v", err)
		return roots
	}
	for _, m := range ms {
		if m.fstype == "proc" && m.point != "/proc" && !slices.Contains(roots, m.point) {
			roots = append(roots, m.point)
		}
	}
	return roots
}

// markerProcs finds, in every procfs, the process folders (/proc/<pid>, or
// /host/proc/<pid>) whose command line carries the run's marker.
func markerProcs(marker string, o *obs) []string {
	var out []string
	for _, root := range procfsRoots(o) {
		entries, err := os.ReadDir(root)
		if err != nil {
			o.logf("reading %s: %v", root, err)
			continue
		}
		seen, hits := 0, 0
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			seen++
			dir := filepath.Join(root, e.Name())
			b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
			if err != nil || !bytes.Contains(b, []byte(marker)) {
				continue
			}
			hits++
			out = append(out, dir)
		}
		o.logf("%s: scanned %d processes, %d carry the marker", root, seen, hits)
	}
	return out
}

func hostProcessCmdline(_ context.Context, s probespec.Spec, o *obs) {
	for _, dir := range markerProcs(s.Marker, o) {
		b, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		o.candidate(strings.ReplaceAll(string(b), "\x00", " "))
	}
}

func ptraceEnviron(_ context.Context, s probespec.Spec, o *obs) {
	for _, dir := range markerProcs(s.Marker, o) {
		b, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil {
			o.logf("read %s/environ: %v", dir, err)
			continue
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if strings.Contains(kv, s.Marker) {
				o.candidate(kv)
			}
		}
	}
}

func procRootFile(_ context.Context, s probespec.Spec, o *obs) {
	for _, dir := range markerProcs(s.Marker, o) {
		readCandidate(o, dir+"/root"+s.CanaryPath)
	}
}

func shmFile(_ context.Context, s probespec.Spec, o *obs) {
	readCandidate(o, "/dev/shm/"+s.ShmName)
}

// readCandidate reads a file where a canary might be and keeps what it holds.
func readCandidate(o *obs, path string) {
	c, err := readSmall(path, 512)
	if err != nil {
		o.logf("read %s: %v", path, err)
		return
	}
	o.logf("read %s", path)
	o.candidate(c)
}

func sysvShm(_ context.Context, s probespec.Spec, o *obs) {
	id, err := unix.SysvShmGet(s.ShmKey, 0, 0)
	if err != nil {
		o.logf("shmget(key %#x): %v", s.ShmKey, err)
		return
	}
	b, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		o.logf("shmat(%d, read-only): %v", id, err)
		return
	}
	defer func() { _ = unix.SysvShmDetach(b) }()
	n := bytes.IndexByte(b, 0)
	if n < 0 || n > 512 {
		n = min(len(b), 512)
	}
	o.logf("attached SysV segment %d read-only", id)
	o.candidate(string(b[:n]))
}

func keyring(_ context.Context, s probespec.Spec, o *obs) {
	if s.KeyDescription == "" {
		o.notApplicable("no keyring canary was planted (the node agent could not write root's user keyring)")
		return
	}
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", s.KeyDescription, 0)
	if err != nil {
		o.logf("keyctl search @u user %s: %v", s.KeyDescription, err)
		return
	}
	buf := make([]byte, 512)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		o.logf("keyctl read %d: %v", id, err)
		return
	}
	o.logf("read key %d", id)
	o.candidate(string(buf[:min(n, len(buf))]))
}

func kernelLog(_ context.Context, s probespec.Spec, o *obs) {
	n, err := unix.Klogctl(10, nil) // SYSLOG_ACTION_SIZE_BUFFER
	if err != nil || n <= 0 {
		n = 1 << 20
	}
	buf := make([]byte, n)
	k, err := unix.Klogctl(3, buf) // SYSLOG_ACTION_READ_ALL
	if err != nil {
		o.logf("syslog(READ_ALL): %v", err)
		return
	}
	lines := 0
	for _, l := range strings.Split(string(buf[:k]), "\n") {
		lines++
		if strings.Contains(l, s.Marker) {
			o.candidate(l)
		}
	}
	o.logf("read %d kernel log lines", lines)
}
