// Package probespec is the contract between the harness and kwc-probe: what a probe
// run is told (where to look, never the secrets), what it reports back, and the
// catalogue of probes with the control each must reach. Both the probe binary and the
// verdict rules import it; it does no I/O.
package probespec

import "time"

// Spec tells a probe run where to look. It carries names, paths and ports, never the
// secret: a probe cannot claim success, it can only bring back what it read.
type Spec struct {
	RunID string `json:"runID"`
	// Marker prefixes every canary's content and name: kwc-canary-<runID>.
	Marker string `json:"marker"`
	// CanaryPath is the file canary's path on the node's root filesystem.
	CanaryPath string `json:"canaryPath"`
	// CanaryHandle is the file canary's handle (name_to_handle_at on the node): with
	// CAP_DAC_READ_SEARCH, any mount of the same filesystem opens it by handle, wherever
	// that filesystem is mounted on the node (a kind node's /var is a folder of the
	// host's disk). Nil where the node's filesystem gives no handles.
	CanaryHandle *FileHandle `json:"canaryHandle,omitempty"`
	// FolderCanaries are more file canaries on the node, one in each host folder that
	// workspaces get mounted most often (/etc, /home, /var/log, ...): a mount of any of
	// those exposes one even where it does not reach CanaryPath.
	FolderCanaries []string `json:"folderCanaries,omitempty"`
	// LoopbackPort is the node-loopback challenge listener.
	LoopbackPort int `json:"loopbackPort"`
	// AbstractSocket is the name (without the leading @) of the abstract unix socket.
	AbstractSocket string `json:"abstractSocket"`
	// ShmName is the /dev/shm entry; ShmKey the SysV shared-memory key.
	ShmName string `json:"shmName"`
	ShmKey  int    `json:"shmKey"`
	// KeyDescription is the user key in root's user keyring.
	KeyDescription string `json:"keyDescription"`
	// LoopDevice is the canary loop device's major:minor on the node.
	LoopDevice string `json:"loopDevice"`
	// Sockets are container-runtime sockets to ask for their identity.
	Sockets []string `json:"sockets"`
	// TempDir is where the probe may create mounts and nodes; it removes them.
	TempDir string `json:"tempDir"`
	// Only limits the run to these probe IDs (all when empty).
	Only []string `json:"only,omitempty"`
	// Timeout bounds each probe.
	TimeoutSeconds float64 `json:"timeoutSeconds"`
	// Discovery bounds the walks that find what the workspace can reach (mounts,
	// device roots, sockets, IPC objects); zero fields take DefaultBounds.
	Discovery Bounds `json:"discovery,omitempty"`
}

// FileHandle is a file handle as name_to_handle_at(2) returns it.
type FileHandle struct {
	Type  int32  `json:"type"`
	Bytes []byte `json:"bytes"`
}

// Bounds limit how far discovery looks. A walk that a bound cut is named in the
// probe's facts, so a verdict says how far it looked.
type Bounds struct {
	// WalkDepth is how many folders below a mount point a walk descends.
	WalkDepth int `json:"walkDepth,omitempty"`
	// WalkEntries is how many entries one mount's walk reads.
	WalkEntries int `json:"walkEntries,omitempty"`
	// WalkMS is the time all of one probe's walks may take together.
	WalkMS int `json:"walkMs,omitempty"`
	// AskSockets is how many discovered sockets are asked who they are.
	AskSockets int `json:"askSockets,omitempty"`
	// AskMS is each socket's time to answer.
	AskMS int `json:"askMs,omitempty"`
	// IPCObjects is how many SysV segments are read.
	IPCObjects int `json:"ipcObjects,omitempty"`
}

// DefaultBounds are the bounds a spec that names none gets; config's defaults say
// the same (a test ties them).
func DefaultBounds() Bounds {
	return Bounds{WalkDepth: 4, WalkEntries: 5000, WalkMS: 2000, AskSockets: 32, AskMS: 800, IPCObjects: 256}
}

// OrDefault fills every zero field from DefaultBounds.
func (b Bounds) OrDefault() Bounds {
	d := DefaultBounds()
	if b.WalkDepth <= 0 {
		b.WalkDepth = d.WalkDepth
	}
	if b.WalkEntries <= 0 {
		b.WalkEntries = d.WalkEntries
	}
	if b.WalkMS <= 0 {
		b.WalkMS = d.WalkMS
	}
	if b.AskSockets <= 0 {
		b.AskSockets = d.AskSockets
	}
	if b.AskMS <= 0 {
		b.AskMS = d.AskMS
	}
	if b.IPCObjects <= 0 {
		b.IPCObjects = d.IPCObjects
	}
	return b
}

// Status is what a probe could do, before any verdict.
type Status string

const (
	// Observed: the probe ran; its candidates and facts are for the harness to judge.
	Observed Status = "observed"
	// NotApplicable: the primitive does not exist here (reason says why).
	NotApplicable Status = "not-applicable"
	// Errored: the probe could not run to completion (reason says why).
	Errored Status = "error"
)

// Observation is one probe's raw evidence.
type Observation struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Candidates are strings read from wherever a canary might be; the harness looks
	// for the secret in them.
	Candidates []string          `json:"candidates,omitempty"`
	Facts      map[string]string `json:"facts,omitempty"`
	// Evidence says what the probe did and saw, step by step.
	Evidence   []string `json:"evidence,omitempty"`
	DurationMS int64    `json:"durationMs"`
}

// Result is one probe run in one context.
type Result struct {
	// Context facts: who the probe ran as and with what capabilities.
	Context      map[string]string `json:"context"`
	Observations []Observation     `json:"observations"`
	DurationMS   int64             `json:"durationMs"`
}

// Rule is how the harness decides a probe's verdict.
type Rule string

const (
	// RuleSecret: reached when a candidate holds the run's secret.
	RuleSecret Rule = "secret"
	// RuleChallenge: reached when a candidate answers the challenge with the secret's HMAC.
	RuleChallenge Rule = "challenge"
	// RuleSameKernel: reached when the facts equal the node's (same kernel).
	RuleSameKernel Rule = "same-kernel"
	// RuleWritableSameKernel: reached when the probe could open a kernel knob for writing
	// and the kernel is the node's: a write would change the node.
	RuleWritableSameKernel Rule = "writable-same-kernel"
	// RuleNodeEngine: reached when a runtime socket answers with the node engine's identity.
	RuleNodeEngine Rule = "node-engine"
	// RuleNodeDisk: reached when a block device's first bytes hash to one of the node's
	// disks: the workspace can read a host disk, whatever the device is called.
	RuleNodeDisk Rule = "node-disk"
)

// Node facts about the node's disks, recorded by the node agent for RuleNodeDisk.
const (
	// FactDiskIDs is the node's disk hashes, "hash=name" separated by spaces.
	FactDiskIDs = "diskIDs"
	// FactDiskIDsError says why some of the node's disks could not be read.
	FactDiskIDsError = "diskIDsError"
	// DiskIDCandidatePrefix marks a probe candidate that is a block device's hash.
	DiskIDCandidatePrefix = "disk-sha256:"
)

// Kernel identity facts beside boot_id, read from system calls (a bind mount can mask
// a file, not a system call's answer): the kernel's release and version from uname(2),
// and its boot time in Unix seconds from sysinfo(2)'s uptime.
const (
	FactBootID   = "bootID"
	FactUname    = "uname"
	FactBootTime = "bootTime"
)

// Probe is a catalogue entry.
type Probe struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Techniques []string `json:"techniques"`
	// Control is the control lane where the probe must be reached (C1, C2, C3).
	Control string `json:"control"`
	Rule    Rule   `json:"rule"`
	// Timeout bounds the probe; past it the probe is an error, never a block.
	Timeout time.Duration `json:"-"`
	// Root says the probe needs root in its context (it runs through sudo).
	Root bool `json:"root"`
}

// Catalog lists every probe kwc runs, in report order.
var Catalog = []Probe{
	{ID: "P01-kernel-identity", Title: "boot_id, kernel and machine identity equal the node's", Techniques: []string{"P01", "T22"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleSameKernel},
	{ID: "P02-block-device-canary", Title: "a block device holds the node's canary filesystem", Techniques: []string{"P02", "T01", "T31"}, Control: "C1", Timeout: 10 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P03-kernel-log", Title: "the node's kernel log shows the canary line", Techniques: []string{"P03", "T40"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P04-mounted-host-file", Title: "a mount exposes the node's canary file", Techniques: []string{"P04", "T14", "T15"}, Control: "C3", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P05-host-process-cmdline", Title: "the canary process's command line is visible", Techniques: []string{"P05", "T10"}, Control: "C2", Timeout: 3 * time.Second, Rule: RuleSecret},
	{ID: "P06-ptrace-environ", Title: "the canary process's environment is readable (ptrace access)", Techniques: []string{"P05", "T08"}, Control: "C2", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P07-proc-root-file", Title: "the canary file through the canary process's /proc/<pid>/root", Techniques: []string{"P05", "T09"}, Control: "C2", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P08-loopback-challenge", Title: "the node's loopback listener answers the challenge", Techniques: []string{"P06", "T11", "T30"}, Control: "C2", Timeout: 4 * time.Second, Rule: RuleChallenge},
	{ID: "P09-abstract-socket", Title: "the node's abstract unix socket answers the challenge", Techniques: []string{"P07", "T12"}, Control: "C2", Timeout: 4 * time.Second, Rule: RuleChallenge},
	{ID: "P10-shm-file", Title: "the node's /dev/shm canary is readable", Techniques: []string{"P18", "T13"}, Control: "C2", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P11-sysv-shm", Title: "the node's SysV shared-memory canary is attachable", Techniques: []string{"P18", "T13"}, Control: "C2", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P12-keyring", Title: "root's user keyring holds the canary key", Techniques: []string{"P20", "T23"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P13-runtime-socket", Title: "a container-runtime socket answers with the node engine's identity", Techniques: []string{"P08", "T16", "T17"}, Control: "C3", Timeout: 8 * time.Second, Rule: RuleNodeEngine, Root: true},
	{ID: "P14-core-pattern", Title: "kernel.core_pattern of the node's kernel is writable", Techniques: []string{"P09", "T05"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleWritableSameKernel, Root: true},
	{ID: "P15-modprobe-path", Title: "kernel.modprobe of the node's kernel is writable", Techniques: []string{"P09", "T06", "T21"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleWritableSameKernel, Root: true},
	{ID: "P16-cgroup-release-agent", Title: "a cgroup v1 release_agent of the node's kernel is writable", Techniques: []string{"P10", "T03", "T04"}, Control: "C1", Timeout: 5 * time.Second, Rule: RuleWritableSameKernel, Root: true},
	{ID: "P17-cgroup-devices-allow", Title: "a cgroup v1 devices.allow of the node's kernel is writable", Techniques: []string{"P02", "T02"}, Control: "C1", Timeout: 5 * time.Second, Rule: RuleWritableSameKernel, Root: true},
	{ID: "P18-kernel-modules", Title: "the loaded module list is the node's and module loading is permitted", Techniques: []string{"P19", "T06"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleSameKernel, Root: true},
	{ID: "P19-open-by-handle", Title: "open_by_handle_at reaches the canary file from a bind mount", Techniques: []string{"T07"}, Control: "C1", Timeout: 3 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P20-mknod-loop-canary", Title: "a device node made for the canary loop device reads the canary", Techniques: []string{"P02", "T01", "T32"}, Control: "C1", Timeout: 10 * time.Second, Rule: RuleSecret, Root: true},
	{ID: "P21-host-disk-identity", Title: "a block device's first bytes are a node disk's", Techniques: []string{"P02", "T01", "T31"}, Control: "C1", Timeout: 8 * time.Second, Rule: RuleNodeDisk, Root: true},
}

// Lookup returns a catalogue entry.
func Lookup(id string) (Probe, bool) {
	for _, p := range Catalog {
		if p.ID == id {
			return p, true
		}
	}
	return Probe{}, false
}

// The node agent's canaries, by name: the agent plants each, and a probe that looks
// for one whose planting failed proves nothing by finding nothing.
const (
	CanaryFile        = "file"
	CanaryFolderFiles = "folder files"
	CanaryProcess     = "process"
	CanaryLoopback    = "loopback listener"
	CanaryAbstract    = "abstract socket"
	CanaryKmsg        = "kernel log line"
	CanaryShmFile     = "/dev/shm entry"
	CanarySysvShm     = "SysV shared memory"
	CanaryKey         = "keyring key"
	CanaryLoop        = "loop device"
)

// CanaryMissingFact is the node fact the agent sets, to why, for a canary it could not
// plant.
func CanaryMissingFact(canary string) string { return "canaryMissing." + canary }
