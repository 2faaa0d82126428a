package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/probe"
	"kwc.dev/kwc/internal/probespec"
)

// Liveness is what the node confirmed of a run's canaries at one moment, and the
// node's kernel facts read at that moment. A probe that finds nothing proves nothing
// if its canary was gone (the process died, the kernel-log line aged out of the ring
// buffer), and node facts frozen at plant time miss a module loaded since.
type Liveness struct {
	// Dead maps each planted canary that is not alive to why.
	Dead map[string]string `json:"dead,omitempty"`
	// Facts are the node's kernel facts now.
	Facts map[string]string `json:"facts"`
	// Revived lists canaries put back before the lane (the kernel-log line).
	Revived []string `json:"revived,omitempty"`
}

// CheckCanaries confirms each canary the inventory says was planted, from where the
// agent runs (the host, or the agent's pod with the node's PID, network and IPC
// namespaces). With revive, a kernel-log line that aged out is written again.
func CheckCanaries(h Held, revive bool) Liveness {
	spec, token, inventory := h.S, h.T, h.I
	l := Liveness{Dead: map[string]string{}, Facts: probe.KernelFacts()}
	content := spec.Marker + ":" + token
	checks := map[string]func() error{
		probespec.CanaryFile:        func() error { return holds(spec.CanaryPath, content) },
		probespec.CanaryFolderFiles: func() error { return foldersHold(h.R, spec.FolderCanaries, content) },
		probespec.CanaryProcess:     func() error { return processAlive(content) },
		probespec.CanaryLoopback: func() error {
			return answers("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.LoopbackPort)), token)
		},
		probespec.CanaryAbstract: func() error { return answers("unix", "@"+spec.AbstractSocket, token) },
		probespec.CanaryKmsg:     func() error { return kernelLogHolds(content) },
		probespec.CanaryShmFile:  func() error { return holds("/dev/shm/"+spec.ShmName, content) },
		probespec.CanarySysvShm:  func() error { return segmentHolds(spec.ShmKey, content) },
		probespec.CanaryKey:      func() error { return keyHolds(spec.KeyDescription, content) },
		probespec.CanaryLoop:     func() error { return loopHolds(spec.LoopDevice, content) },
	}
	for _, name := range inventory {
		check, ok := checks[name]
		if !ok {
			continue // "<name>: not planted: ..." entries; those probes already say so
		}
		err := check()
		if err != nil && revive && name == probespec.CanaryKmsg {
			if werr := plantKmsg(content); werr == nil {
				l.Revived = append(l.Revived, name)
				err = check()
			}
		}
		if err != nil {
			l.Dead[name] = err.Error()
		}
	}
	return l
}

func holds(path, content string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(content)) {
		return fmt.Errorf("%s no longer holds the canary", path)
	}
	return nil
}

func foldersHold(nodeRoot string, paths []string, content string) error {
	var gone []string
	for _, p := range paths {
		if err := holds(filepath.Join(nodeRoot, p), content); err != nil {
			gone = append(gone, err.Error())
		}
	}
	if len(gone) > 0 {
		return fmt.Errorf("%d of %d folder canaries gone: %s", len(gone), len(paths), strings.Join(gone, "; "))
	}
	return nil
}

func processAlive(content string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(b, []byte(content)) {
			return nil
		}
	}
	return fmt.Errorf("no process in /proc carries the canary's command line")
}

// answers asks a canary listener the challenge and checks the answer with the secret.
func answers(network, addr, token string) error {
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := fmt.Fprintf(conn, "KWC-CHALLENGE %s\n", nonce); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s did not answer: %w", addr, err)
	}
	if strings.TrimSpace(line) != Answer(token, nonce) {
		return fmt.Errorf("%s answered, but not with the secret's HMAC", addr)
	}
	return nil
}

func kernelLogHolds(content string) error {
	text, err := probe.KernelLog()
	if err != nil {
		return err
	}
	if !strings.Contains(text, content) {
		return fmt.Errorf("the canary line has aged out of the kernel's log ring")
	}
	return nil
}

func segmentHolds(key int, content string) error {
	id, err := unix.SysvShmGet(key, 0, 0)
	if err != nil {
		return fmt.Errorf("shmget(%#x): %w", key, err)
	}
	c, err := probe.ReadSegment(id)
	if err != nil {
		return err
	}
	if !strings.Contains(c, content) {
		return fmt.Errorf("segment %d no longer holds the canary", id)
	}
	return nil
}

func keyHolds(desc, content string) error {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", desc, 0)
	if err != nil {
		return fmt.Errorf("keyctl search %s: %w", desc, err)
	}
	buf := make([]byte, 512)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		return fmt.Errorf("keyctl read %d: %w", id, err)
	}
	if !strings.Contains(string(buf[:min(n, len(buf))]), content) {
		return fmt.Errorf("key %d no longer holds the canary", id)
	}
	return nil
}

// loopHolds reads the start of the canary loop device, found by its number.
func loopHolds(rdev, content string) error {
	uevent, err := os.ReadFile("/sys/dev/block/" + rdev + "/uevent")
	if err != nil {
		return fmt.Errorf("loop device %s: %w", rdev, err)
	}
	name := ""
	for _, l := range strings.Split(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			name = v
		}
	}
	if name == "" {
		return fmt.Errorf("loop device %s has no name in sysfs", rdev)
	}
	f, err := os.Open("/dev/" + name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, err := f.Read(buf)
	if err != nil {
		return fmt.Errorf("reading /dev/%s: %w", name, err)
	}
	if !bytes.Contains(buf[:n], []byte(content)) {
		return fmt.Errorf("/dev/%s (%s) no longer holds the canary (detached?)", name, rdev)
	}
	return nil
}

// Alive confirms this run's canaries from the harness's host (docker target).
func (p *Planted) Alive(context.Context) (Liveness, error) {
	return CheckCanaries(HeldFrom(p), true), nil
}

// LaneFacts are the node facts a lane is judged against: the facts recorded when the
// canaries were planted, the kernel facts read fresh before the lane, and every canary
// not alive before or after it marked missing, so its probes' "blocked" is an error.
// A liveness check that could not run marks every canary.
func LaneFacts(planted map[string]string, inventory []string, before, after Liveness, beforeErr, afterErr error) map[string]string {
	f := make(map[string]string, len(planted)+8)
	for k, v := range planted {
		f[k] = v
	}
	for k, v := range before.Facts {
		f[k] = v
	}
	mark := func(when string, l Liveness, err error) {
		for _, name := range inventory {
			why, dead := l.Dead[name]
			if err != nil {
				why, dead = "its liveness could not be checked: "+err.Error(), true
			}
			if dead && f[probespec.CanaryMissingFact(name)] == "" {
				f[probespec.CanaryMissingFact(name)] = "not alive " + when + " the lane: " + why
			}
		}
	}
	mark("before", before, beforeErr)
	mark("after", after, afterErr)
	return f
}
