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

// sysvShm attaches, read-only, every SysV shared-memory segment the workspace's IPC
// namespace lists, whatever its key (the node's IPC namespace lists the node's), up
// to the discovery bound, and the canary's key besides. Message queues and semaphore
// sets are counted for the evidence.
func sysvShm(_ context.Context, s probespec.Spec, o *obs) {
	b := s.Discovery.OrDefault()
	ids, err := sysvSegments()
	if err != nil {
		o.logf("reading /proc/sysvipc/shm: %v", err)
	}
	if id, err := unix.SysvShmGet(s.ShmKey, 0, 0); err == nil && !slices.Contains(ids, id) {
		ids = append([]int{id}, ids...)
	} else if err != nil {
		o.logf("shmget(key %#x): %v", s.ShmKey, err)
	}
	o.fact("sysvSegments", fmt.Sprint(len(ids)))
	if len(ids) > b.IPCObjects {
		o.fact("sysvCut", fmt.Sprintf("read the first %d of %d segments", b.IPCObjects, len(ids)))
		ids = ids[:b.IPCObjects]
	}
	for _, id := range ids {
		attachRead(o, id)
	}
	for _, f := range []string{"msg", "sem"} {
		if n, err := countLines("/proc/sysvipc/" + f); err == nil {
			o.fact("sysv"+f, fmt.Sprint(n))
		}
	}
	if n, err := os.ReadDir("/dev/mqueue"); err == nil {
		o.fact("posixQueues", fmt.Sprint(len(n)))
	}
	o.logf("%d SysV segments listed", len(ids))
}

// sysvSegments lists the segment ids of this IPC namespace.
func sysvSegments() ([]int, error) {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 {
			if id, err := strconv.Atoi(f[1]); err == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// attachRead attaches one segment read-only and keeps its start as a candidate.
func attachRead(o *obs, id int) {
	c, err := ReadSegment(id)
	if err != nil {
		o.logf("%v", err)
		return
	}
	o.logf("attached SysV segment %d read-only", id)
	if c != "" {
		o.candidate(c)
	}
}

// ReadSegment attaches a SysV segment read-only and returns its start, up to the
// first NUL or 512 bytes.
func ReadSegment(id int) (string, error) {
	b, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		return "", fmt.Errorf("shmat(%d, read-only): %w", id, err)
	}
	defer func() { _ = unix.SysvShmDetach(b) }()
	n := bytes.IndexByte(b, 0)
	if n < 0 || n > 512 {
		n = min(len(b), 512)
	}
	return string(b[:n]), nil
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return max(0, len(strings.Split(strings.TrimSpace(string(b)), "\n"))-1), nil
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

// kernelLog reads the kernel's log through syslog(2) and through every kmsg node
// (1:11) in any device root: /dev/kmsg passed in as a device, or a host /dev mounted,
// reads the node's log where syslog(2) is refused. It also lists the character devices
// found that lead into the kernel or the host.
func kernelLog(_ context.Context, s probespec.Spec, o *obs) {
	if text, err := KernelLog(); err != nil {
		o.logf("syslog(READ_ALL): %v", err)
	} else {
		o.logf("syslog(READ_ALL): %d kernel log lines", markerLines(o, text, s.Marker))
	}
	nodes := discoverDevNodes(s, o)
	o.fact("hostCharDevices", notableCharDevices(nodes))
	for _, nd := range nodes {
		if nd.block || nd.rdev != kmsgRdev {
			continue
		}
		text, err := readKmsg(nd.path)
		if err != nil {
			o.logf("read %s (kmsg): %v", nd.path, err)
			continue
		}
		o.logf("read %s (kmsg): %d records", nd.path, markerLines(o, text, s.Marker))
	}
}

// KernelLog is the kernel's log ring as syslog(2) reads it (SYSLOG_ACTION_READ_ALL).
func KernelLog() (string, error) {
	n, err := unix.Klogctl(10, nil) // SYSLOG_ACTION_SIZE_BUFFER
	if err != nil || n <= 0 {
		n = 1 << 20
	}
	buf := make([]byte, n)
	k, err := unix.Klogctl(3, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

// markerLines keeps the lines that carry the marker and returns how many lines it read.
func markerLines(o *obs, text, marker string) int {
	lines := 0
	for _, l := range strings.Split(text, "\n") {
		lines++
		if marker != "" && strings.Contains(l, marker) {
			o.candidate(l)
		}
	}
	return lines
}

// readKmsg reads every record a kmsg node holds, oldest first, without waiting for new
// ones: raw non-blocking reads, since Go's poller would turn EAGAIN (no record left)
// into a wait. Each read returns one record; EPIPE says one was overwritten meanwhile.
func readKmsg(path string) (string, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var sb strings.Builder
	buf := make([]byte, 8192)
	for i := 0; i < 1<<17 && sb.Len() < 8<<20; i++ {
		k, err := unix.Read(fd, buf)
		switch {
		case err == unix.EAGAIN:
			return sb.String(), nil
		case err == unix.EPIPE || err == unix.EINTR:
			continue
		case err != nil:
			return sb.String(), err
		case k == 0:
			return sb.String(), nil
		}
		sb.Write(buf[:k])
		if buf[k-1] != '\n' {
			sb.WriteByte('\n')
		}
	}
	return sb.String(), nil
}
