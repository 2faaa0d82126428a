// Package nodeagent plants a run's secret canaries on the node, records the node's
// facts, snapshots node state before and after a lane, and removes everything it
// planted. It holds the secret; probes never see it. On the docker target it runs in
// the harness, on the host; on Kubernetes targets it runs as a privileged DaemonSet.
package nodeagent

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/probe"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/runid"
)

// CanaryRoot is where the file canary lives on the node's root filesystem, in no
// workspace volume.
const CanaryRoot = "/var/lib/kwc-canary"

// HostFolders are the host folders workspaces get mounted most often, each of which
// gets a file canary: a mount of /etc or /var/log exposes it though it does not reach
// CanaryRoot. Only folders that exist get one; none is created.
var HostFolders = []string{"/etc", "/root", "/home", "/var/log", "/run", "/opt", "/srv",
	"/tmp", "/var/tmp", "/var", "/var/lib", "/mnt", "/media", "/usr/local", "/boot",
	"/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet"}

// FolderCanaryName is the file canary's name in a host folder.
func FolderCanaryName(runID string) string { return "." + Marker(runID) }

// Options tune what is planted.
type Options struct {
	RunID string
	// Sockets are runtime sockets on the node the probes may ask (the engine's own).
	Sockets []string
	// EngineID is the node engine's identity, for the runtime-socket probe.
	EngineID string
	// ContainerdSockets are the node's containerd sockets; the first that answers gives
	// the containerd identity a probe must not be able to reach.
	ContainerdSockets []string
	// Folders are host folders to plant a file canary in (HostFolders on a host the
	// harness owns; none where the agent runs in a container and cannot write the
	// node's root).
	Folders []string
	// NodeRoot is where the node's root filesystem is mounted writable in the agent
	// ("" when the agent runs on the node itself, as on the docker target): folder
	// canaries go to NodeRoot+folder, and the probes are told the node's own path.
	NodeRoot string
	// ProbeTimeout caps each probe's own timeout (config probes.timeout); 0 means
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Discovery bounds the probes' walks (config probes.discovery); zero fields take
	// probespec.DefaultBounds.
	Discovery probespec.Bounds
	// Logf prints progress; may be nil.
	Logf func(string, ...any)
}

// Planted is a run's canaries, alive until Remove.
type Planted struct {
	spec    probespec.Spec
	token   string
	facts   map[string]string
	planted []string // what was planted, for the report
	// nodeRoot is Options.NodeRoot: where the agent reaches the node's folders.
	nodeRoot string
	undo     []func() error
	mu       sync.Mutex
	removed  bool
}

// ProcessEnv is the environment variable that marks the canary process (and anything
// it might start): cleanup finds a killed run's processes by it.
const ProcessEnv = "KWC_CANARY"

// ShmKey is the SysV shared-memory key of run runID's segment: 0x6b77 ("kw") in the
// high half, so cleanup can tell kwc's keys from others before it reads the segment.
func ShmKey(runID string) int { return int(ShmKeyPrefix | crc32.ChecksumIEEE([]byte(runID))&0xffff) }

// ShmKeyPrefix is the high half of every kwc SysV key.
const ShmKeyPrefix = 0x6b770000

// Marker names everything of run runID.
func Marker(runID string) string { return "kwc-canary-" + runID }

// Content is what every canary holds: the marker, then the secret.
func Content(runID, token string) string { return Marker(runID) + ":" + token }

// Answer is the challenge listeners' answer to a nonce.
func Answer(token, nonce string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// Plant plants every canary it can. A canary that cannot be planted here (no loop
// devices, say) is recorded as missing, and its probe reports not-applicable; an
// error means the agent cannot work at all (not root, say).
func Plant(o Options) (*Planted, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the node agent must run as root to plant canaries on the host (run the suite as root, or use a Kubernetes target where it runs as a DaemonSet)")
	}
	if err := runid.Check(o.RunID); err != nil {
		return nil, fmt.Errorf("the node agent names every canary by its run: %w", err)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	p := &Planted{token: hex.EncodeToString(tok), nodeRoot: o.NodeRoot}
	marker := Marker(o.RunID)
	content := Content(o.RunID, p.token)
	p.spec = probespec.Spec{
		RunID: o.RunID, Marker: marker,
		CanaryPath:     filepath.Join(CanaryRoot, o.RunID, "canary"),
		AbstractSocket: marker,
		ShmName:        marker,
		ShmKey:         ShmKey(o.RunID),
		KeyDescription: marker,
		Sockets:        o.Sockets,
		TempDir:        "/tmp/kwc-probe-" + o.RunID,
		TimeoutSeconds: probeTimeout(o.ProbeTimeout).Seconds(),
		Discovery:      o.Discovery.OrDefault(),
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{probespec.CanaryFile, func() error { return p.plantFile(content) }},
		{probespec.CanaryFolderFiles, func() error { return p.plantFolderFiles(o.Folders, content) }},
		{probespec.CanaryProcess, func() error { return p.plantProcess(content) }},
		{probespec.CanaryLoopback, func() error { return p.plantListener("tcp", "127.0.0.1:0") }},
		{probespec.CanaryAbstract, func() error { return p.plantListener("unix", "@"+marker) }},
		{probespec.CanaryKmsg, func() error { return plantKmsg(content) }},
		{probespec.CanaryShmFile, func() error { return p.plantShmFile(content) }},
		{probespec.CanarySysvShm, func() error { return p.plantSysvShm(content) }},
		{probespec.CanaryKey, func() error { return p.plantKey(content) }},
		{probespec.CanaryLoop, func() error { return p.plantLoop(content) }},
	}
	missing := map[string]string{}
	for _, s := range steps {
		if err := s.f(); err != nil {
			logf("node agent: could not plant the %s canary: %v", s.name, err)
			p.planted = append(p.planted, s.name+": not planted: "+err.Error())
			missing[s.name] = err.Error()
			continue
		}
		p.planted = append(p.planted, s.name)
	}
	p.facts = probe.KernelFacts()
	// A probe that finds nothing where no canary was planted proves nothing: the
	// verdict rules read these and make such a "blocked" an error.
	for name, why := range missing {
		p.facts[probespec.CanaryMissingFact(name)] = why
	}
	p.facts["cgroupMode"] = probe.CgroupMode()
	// The node's disks, by their first bytes: P21 recognises one in a workspace
	// whatever it is called there.
	ids, blank, derr := probe.NodeDiskIDs()
	p.facts[probespec.FactDiskIDs] = strings.Join(ids, " ")
	if derr != nil {
		p.facts[probespec.FactDiskIDsError] = derr.Error()
	}
	if len(blank) > 0 {
		logf("node agent: disks with a blank start, not recognisable by P21: %s", strings.Join(blank, ", "))
	}
	if o.EngineID != "" {
		p.facts["engineID"] = o.EngineID
	}
	for _, s := range o.ContainerdSockets {
		if id, err := probe.ContainerdUUID(context.Background(), s); err == nil {
			p.facts["containerdUUID"] = id
			break
		}
	}
	logf("node agent: planted %d canaries for run %s", len(p.undo), o.RunID)
	return p, nil
}

// DefaultProbeTimeout caps each probe when the config does not say.
const DefaultProbeTimeout = 15 * time.Second

func probeTimeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultProbeTimeout
}

// Spec is what probes are told. It never holds the secret.
func (p *Planted) Spec() probespec.Spec { return p.spec }

// Token is the run's secret, for the verdict rules only.
func (p *Planted) Token() string { return p.token }

// Facts are the node's facts recorded when the canaries were planted.
func (p *Planted) Facts() map[string]string { return p.facts }

// Inventory says which canaries were planted and which could not be.
func (p *Planted) Inventory() []string { return append([]string(nil), p.planted...) }

// Remove removes every canary, newest first, and reports what it could not remove.
// It is safe to call more than once.
func (p *Planted) Remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil
	}
	p.removed = true
	var errs []error
	for i := len(p.undo) - 1; i >= 0; i-- {
		if err := p.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Planted) plantFile(content string) error {
	dir := filepath.Dir(p.spec.CanaryPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p.undo = append(p.undo, func() error {
		err := os.RemoveAll(dir)
		_ = os.Remove(CanaryRoot) // only when no other run's canary is there
		return err
	})
	if err := os.WriteFile(p.spec.CanaryPath, []byte(content+"\n"), 0o600); err != nil {
		return err
	}
	// A filesystem without handles (some tmpfs, overlay without index) leaves the
	// handle out; P19 then has only the canary's path to try.
	if h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p.spec.CanaryPath, 0); err == nil {
		p.spec.CanaryHandle = &probespec.FileHandle{Type: h.Type(), Bytes: h.Bytes()}
	}
	return nil
}

// plantFolderFiles puts a file canary in each folder that exists as a real folder,
// never following a link and never replacing a file.
func (p *Planted) plantFolderFiles(folders []string, content string) error {
	var errs []error
	for _, dir := range folders {
		// The probes are told the node's path; the agent writes through its mount.
		nodePath := filepath.Join(dir, FolderCanaryName(p.spec.RunID))
		path := filepath.Join(p.nodeRoot, nodePath)
		if st, err := os.Lstat(filepath.Dir(path)); err != nil || !st.IsDir() {
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, werr := f.WriteString(content + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		p.undo = append(p.undo, func() error { return os.Remove(path) })
		if werr != nil {
			errs = append(errs, werr)
			continue
		}
		p.spec.FolderCanaries = append(p.spec.FolderCanaries, nodePath)
	}
	return errors.Join(errs...)
}

// plantProcess starts a shell whose argv and environment carry the secret. It forks
// nothing (a forked sleep outlived a SIGKILLed harness as an orphan): it waits in the
// read builtin on a pipe only the agent holds, so it ends when the agent dies however
// it dies (EOF), and PDEATHSIG backs that up. Cleanup finds it by KWC_CANARY.
func (p *Planted) plantProcess(content string) error {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return err
	}
	// The secret is the shell's $0, so it is in the process's command line; the ":"
	// keeps the shell itself in the read. A renamed argv[0] would not do: busybox
	// picks its applet by argv[0].
	cmd := exec.Command(sh, "-c", "read _ignored; :", content)
	cmd.Env = []string{ProcessEnv + "=" + content, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.undo = append(p.undo, func() error {
		_ = stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
		return nil
	})
	return nil
}

// plantListener serves the challenge: "KWC-CHALLENGE <nonce>" gets HMAC(secret, nonce).
func (p *Planted) plantListener(network, addr string) error {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	if network == "tcp" {
		p.spec.LoopbackPort = ln.Addr().(*net.TCPAddr).Port
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				if nonce, ok := strings.CutPrefix(strings.TrimSpace(line), "KWC-CHALLENGE "); ok {
					fmt.Fprintf(c, "%s\n", Answer(p.token, nonce))
				}
			}(c)
		}
	}()
	p.undo = append(p.undo, ln.Close)
	return nil
}

func plantKmsg(content string) error {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The line ages out of the ring buffer; the secret is random and per run.
	_, err = fmt.Fprintf(f, "%s\n", content)
	return err
}

func (p *Planted) plantShmFile(content string) error {
	path := "/dev/shm/" + p.spec.ShmName
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	p.undo = append(p.undo, func() error { return os.Remove(path) })
	return nil
}

func (p *Planted) plantSysvShm(content string) error {
	id, err := unix.SysvShmGet(p.spec.ShmKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		return fmt.Errorf("shmget: %w", err)
	}
	p.undo = append(p.undo, func() error { _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); return err })
	b, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return fmt.Errorf("shmat: %w", err)
	}
	copy(b, content)
	return unix.SysvShmDetach(b)
}

func (p *Planted) plantKey(content string) error {
	id, err := unix.AddKey("user", p.spec.KeyDescription, []byte(content), unix.KEY_SPEC_USER_KEYRING)
	if err == nil {
		// Readable by every process of root's user, possessor or not: the probe in a
		// container is root but does not possess the harness's keys.
		if _, err = unix.KeyctlInt(unix.KEYCTL_SETPERM, id, 0x3f0b0000, 0, 0); err == nil {
			p.undo = append(p.undo, func() error { _, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); return err })
			return nil
		}
		// Not ours to change, so not ours to invalidate either: take it out of the
		// keyring, and the kernel collects it.
		if _, ierr := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); ierr != nil {
			_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		}
	}
	// Probes are told there is no key, so they say not applicable, not blocked. In a
	// container the runtime gives each process a fresh session keyring that does not
	// possess root's user keyring, so the agent cannot make its key readable there.
	p.spec.KeyDescription = ""
	return fmt.Errorf("root's user keyring: %w (a container's session keyring does not possess it)", err)
}

// plantLoop makes a small ext4 image holding the canary file and attaches it
// read-only to a loop device. It must happen before workspaces start: a privileged
// container sees the host's device nodes as they were when it was created.
func (p *Planted) plantLoop(content string) error {
	work := filepath.Join(os.TempDir(), "kwc-loop-"+p.spec.RunID)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	p.undo = append(p.undo, func() error { return os.RemoveAll(work) })
	// Raw bytes, no filesystem: the probes scan the device for the marker, and the
	// agent's image needs no mkfs.
	img := filepath.Join(work, "canary.img")
	raw := make([]byte, 1<<20)
	copy(raw, content+"\n")
	if err := os.WriteFile(img, raw, 0o600); err != nil {
		return err
	}
	dev, made, err := attachLoop(img)
	if made {
		// A node made here (a container's /dev) is ours: it goes when the device does.
		p.undo = append(p.undo, func() error { return removeIfNode(dev) })
	}
	if err != nil {
		return err
	}
	p.undo = append(p.undo, func() error { return detachLoop(dev) })
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return err
	}
	p.spec.LoopDevice = fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	return nil
}

// attachLoop attaches img read-only to a free loop device through the kernel's loop
// ioctls, as losetup does, so no tool is needed in the agent's image. made says it
// created the device node.
func attachLoop(img string) (dev string, made bool, err error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return dev, made, fmt.Errorf("opening /dev/loop-control: %w", err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return dev, made, fmt.Errorf("finding a free loop device: %w", err)
	}
	dev = fmt.Sprintf("/dev/loop%d", n)
	if _, err := os.Stat(dev); os.IsNotExist(err) {
		// A /dev that is not devtmpfs (a container's) lacks nodes made after it started.
		if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil {
			return dev, made, fmt.Errorf("creating %s: %w", dev, err)
		}
		made = true
	}
	backing, err := os.Open(img)
	if err != nil {
		return dev, made, err
	}
	defer backing.Close()
	loop, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return dev, made, fmt.Errorf("opening %s: %w", dev, err)
	}
	defer loop.Close()
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY
	if err := unix.IoctlLoopConfigure(int(loop.Fd()), &cfg); err != nil {
		return dev, made, fmt.Errorf("attaching %s to %s: %w", img, dev, err)
	}
	return dev, made, nil
}

// removeIfNode removes dev when it is still a block device node.
func removeIfNode(dev string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dev, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil
	}
	return os.Remove(dev)
}

func detachLoop(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dev, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && err != unix.ENXIO {
		return fmt.Errorf("detaching %s: %w", dev, err)
	}
	return nil
}

// Snapshot is the node's state now: here, the harness's own host.
func (p *Planted) Snapshot(context.Context) (Snapshot, error) { return TakeSnapshot() }

// OnHost is a run's canaries on the harness's own host as any process of the run
// sees them: process 1 planted and holds them (Planted), the others check them by
// what it recorded. The checks read the host, so they work from every process.
type OnHost struct{ Held }

// Snapshot records the host's state now.
func (OnHost) Snapshot(context.Context) (Snapshot, error) { return TakeSnapshot() }

// Alive confirms the canaries from this process.
func (h OnHost) Alive(context.Context) (Liveness, error) { return CheckCanaries(h.Held, true), nil }

// Canaries is a run's canaries as the harness sees them, wherever the agent runs: in
// the harness on the docker target (*Planted), in a DaemonSet on Kubernetes (Held).
type Canaries interface {
	Spec() probespec.Spec
	Token() string
	Facts() map[string]string
	Inventory() []string
}

// Held is what kwc-agent writes for the harness: the same as a Planted, serialized.
type Held struct {
	S probespec.Spec    `json:"spec"`
	F map[string]string `json:"facts"`
	T string            `json:"token"`
	I []string          `json:"inventory"`
	// R is where the agent reaches the node's root (Options.NodeRoot).
	R string `json:"nodeRoot,omitempty"`
}

// HeldFrom records a Planted for the harness.
func HeldFrom(p *Planted) Held {
	return Held{S: p.Spec(), F: p.Facts(), T: p.Token(), I: p.Inventory(), R: p.nodeRoot}
}

func (h Held) Spec() probespec.Spec     { return h.S }
func (h Held) Token() string            { return h.T }
func (h Held) Facts() map[string]string { return h.F }
func (h Held) Inventory() []string      { return h.I }

var (
	_ Canaries = (*Planted)(nil)
	_ Canaries = Held{}
)
