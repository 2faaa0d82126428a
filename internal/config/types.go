// Package config holds kwc's typed, versioned configuration (kwc.yaml): the embedded
// defaults, an optional user file and flag overrides, decoded strictly, defaulted and
// validated before anything runs.
package config

import (
	"time"

	"kwc.dev/kwc/internal/probespec"
)

// APIVersion and Kind identify a kwc configuration document.
const (
	APIVersion = "kwc.dev/v1alpha1"
	Kind       = "Config"
)

// Target names where workspaces run.
type Target string

const (
	TargetDocker  Target = "docker"
	TargetKind    Target = "kind"
	TargetCluster Target = "cluster"
)

// Role says whether a lane is under test or proves that the probes work.
type Role string

const (
	RoleSubject Role = "subject"
	RoleControl Role = "control"
)

// Shape is the workspace's security shape.
type Shape string

const (
	// ShapeGitLab is what GitLab generates: uid 5001, not privileged,
	// allowPrivilegeEscalation true.
	ShapeGitLab Shape = "gitlab"
	// ShapePrivileged is the GitLab shape with privileged: true.
	ShapePrivileged Shape = "privileged"
)

// Isolation is what a lane claims separates the workspace from the node's kernel.
type Isolation string

const (
	IsolationContainer Isolation = "container"
	// IsolationVM lanes must show a kernel identity different from the node's; an equal
	// identity fails the lane outright (the RuntimeClass was not applied, say).
	IsolationVM Isolation = "vm"
	// IsolationSandbox lanes run on a kernel of their own that is not a VM's (gVisor's
	// Sentry); the VM rule applies: the node's kernel identity fails them outright.
	IsolationSandbox Isolation = "sandbox"
)

// Storage is where a docker-target workspace keeps its nested image stores.
type Storage string

const (
	// StorageVolume puts /var/lib/docker and /var/lib/containers on engine volumes.
	StorageVolume Storage = "volume"
	// StorageTmpfs puts them on tmpfs mounted exec: a sandboxed runtime (gVisor) runs
	// overlay2 on its own tmpfs, not on a host-backed volume.
	StorageTmpfs Storage = "tmpfs"
)

// Network is a lane's network mode. Lanes have none unless they ask for host.
type Network string

const (
	NetworkNone Network = "none"
	NetworkHost Network = "host"
)

// MountType says what a lane's extra mount brings in.
type MountType string

const (
	MountBind MountType = "bind"
	// MountEngineSocket binds the container engine's own socket (from DOCKER_HOST); the
	// C3 control uses it to prove the runtime-socket probe.
	MountEngineSocket MountType = "engine-socket"
	// MountEngineSocketDir binds the folder that holds the engine's socket (a host
	// /run or /var/run mounted whole, as workspaces often are): the socket is then
	// not a mount point of its own, only a file in a mounted folder.
	MountEngineSocketDir MountType = "engine-socket-dir"
)

// Capabilities adjust a lane's capability set.
type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// Seccomp is a lane's seccomp profile.
type Seccomp string

const (
	SeccompRuntimeDefault Seccomp = "RuntimeDefault"
	SeccompUnconfined     Seccomp = "Unconfined"
	// SeccompLocalhost takes the profile in the lane's seccompProfile.
	SeccompLocalhost Seccomp = "Localhost"
)

// Config is the whole of kwc.yaml.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// Target is where workspaces run: docker, kind or cluster.
	Target Target `json:"target,omitempty"`
	// ReportsDir receives reports/<timestamp>-<id>/ and the reports/latest link.
	ReportsDir string `json:"reportsDir,omitempty"`
	// Keep leaves workspaces (and clusters) behind for debugging.
	Keep bool `json:"keep,omitempty"`

	Images      Images              `json:"images,omitempty"`
	Docker      DockerTarget        `json:"docker,omitempty"`
	KindCluster KindTarget          `json:"kindCluster,omitempty"`
	Cluster     ClusterTarget       `json:"cluster,omitempty"`
	Kata        Kata                `json:"kata,omitempty"`
	Lanes       []Lane              `json:"lanes,omitempty"`
	Criteria    Criteria            `json:"criteria,omitempty"`
	Probes      Probes              `json:"probes,omitempty"`
	Intervals   map[string]Duration `json:"intervals,omitempty"`
}

// Images names the images the suite builds and uses. Every reference must point at
// 127.0.0.1 (or be a bare local name): kwc never pulls.
type Images struct {
	// Workspace is the workspace image built from dockerfiles/workspace.
	Workspace string `json:"workspace,omitempty"`
	// WorkspaceBase is the Debian base the workspace image builds FROM; the suite makes it
	// offline with mmdebstrap when the engine lacks it.
	WorkspaceBase string `json:"workspaceBase,omitempty"`
	// DebianSuite is the Debian release mmdebstrap makes WorkspaceBase from.
	DebianSuite string `json:"debianSuite,omitempty"`
	// DebianMirror is the mirror mmdebstrap and the image build use; empty means the
	// host's own apt sources.
	DebianMirror string `json:"debianMirror,omitempty"`
}

// DockerTarget configures the local container engine target.
type DockerTarget struct {
	// KataRuntime is the engine runtime name that adds the kata subject lane when the
	// engine registers it.
	KataRuntime string `json:"kataRuntime,omitempty"`
	// KataLane is the lane added when KataRuntime is registered.
	KataLane *Lane `json:"kataLane,omitempty"`
	// SandboxRuntime is the engine runtime name (gVisor's runsc) that adds SandboxLanes
	// when the engine registers it.
	SandboxRuntime string `json:"sandboxRuntime,omitempty"`
	SandboxLanes   []Lane `json:"sandboxLanes,omitempty"`
}

// KindTarget configures the kind target.
type KindTarget struct {
	// Config names a file in kindconfigs/ (default.yaml, multi-node.yaml) or a path.
	Config string `json:"config,omitempty"`
	// NodeImage overrides the configs' node image (pin it by digest).
	NodeImage string `json:"nodeImage,omitempty"`
	// ShmSize is what each node's /dev/shm is remounted to: kind leaves Docker's 64 MiB,
	// and the QEMU shims keep guest RAM there (kata-containers#5692).
	ShmSize string `json:"shmSize,omitempty"`
	// Kata says what the cluster gets besides runc: install (kata-deploy and a lane
	// per shim: the main job, which needs KVM), none (the configured runc lanes and
	// controls only, on a host without KVM) or decoy (none, plus kata-decoy: runc
	// under a Kata name in every node's containerd, whose lanes must fail escape).
	Kata KindKata `json:"kata,omitempty"`
}

// KindKata is what a kind cluster runs besides runc.
type KindKata string

const (
	KindKataInstall KindKata = "install"
	KindKataNone    KindKata = "none"
	KindKataDecoy   KindKata = "decoy"
)

// NodeImageOffline as kindCluster.nodeImage builds kwc's own node image offline
// (make node-image) and creates the cluster from it.
const NodeImageOffline = "offline"

// DecoyRuntimeClass is the RuntimeClass and containerd handler of kindCluster.kata:
// decoy: plain runc under a Kata name.
const DecoyRuntimeClass = "kata-decoy"

// ClusterTarget configures the cluster target: an existing cluster, reached through a
// kubeconfig, whose nodes pull the run's images from a registry the user names.
type ClusterTarget struct {
	// Kubeconfig is the cluster's kubeconfig; empty means $KUBECONFIG, then
	// ~/.kube/config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Registry receives the run's images (host[:port][/path]); every node must be able
	// to pull from it. $KWC_REGISTRY overrides it.
	Registry string `json:"registry,omitempty"`
	// InsecureRegistry pushes over plain HTTP (always so for 127.0.0.1 and localhost).
	InsecureRegistry bool `json:"insecureRegistry,omitempty"`
	// RuntimeClasses become subject lanes, each in every shape of kata.shapes (VM
	// isolation) or in the GitLab shape only (any other RuntimeClass, e.g. runc or
	// gVisor, whose privileged shape would be control C1 again). Empty means every
	// RuntimeClass whose handler starts with "kata" and is not a debug class. Any
	// RuntimeClass can be named: hypervisors kata-deploy does not ship (ACRN) are
	// tested this way.
	RuntimeClasses []string `json:"runtimeClasses,omitempty"`
	// ContainerdSocket is the path of containerd's socket on the nodes (control C3
	// mounts it, the node agent identifies it). $KWC_CONTAINERD_SOCKET overrides it.
	ContainerdSocket string `json:"containerdSocket,omitempty"`
	// ContainerdConfig is containerd's configuration file on the nodes, read (with its
	// imports) by the Kata configuration checks. $KWC_CONTAINERD_CONFIG overrides it.
	ContainerdConfig string `json:"containerdConfig,omitempty"`
}

// Kata says which Kata to install and which shims become lanes.
type Kata struct {
	// Install: on kind always; on an existing cluster only when true.
	Install bool `json:"install,omitempty"`
	// Chart is the kata-deploy Helm chart's OCI location; Version pins it.
	Chart   string `json:"chart,omitempty"`
	Version string `json:"version,omitempty"`
	// Shims become RuntimeClasses kata-<shim> and lanes. Empty means every shim a
	// plain KVM host can run (katashims.PlainKVM); fc needs a devmapper pool and the
	// confidential and GPU shims need hardware, so they are opt-in.
	Shims []string `json:"shims,omitempty"`
	// Shapes are the workspace shapes each shim is tested in.
	Shapes []Shape `json:"shapes,omitempty"`
	// Debug installs the kata-<shim>-debug classes too (triage runs).
	Debug bool `json:"debug,omitempty"`
	// ImageStore backs /var/lib/docker and /var/lib/containers: memory (emptyDir in
	// guest RAM) or disk; never the virtio-fs root.
	ImageStore string `json:"imageStore,omitempty"`
}

// Lane is one configuration under test or one control.
type Lane struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Control names the escape-probe control this lane provides (C1, C2, C3); controls only.
	Control string `json:"control,omitempty"`
	// Runtime is the engine runtime (docker) or RuntimeClass (kind, cluster).
	Runtime   string    `json:"runtime"`
	Shape     Shape     `json:"shape,omitempty"`
	Isolation Isolation `json:"isolation,omitempty"`
	// Privileged runs the workspace privileged (in the guest, under Kata).
	Privileged bool    `json:"privileged,omitempty"`
	HostPID    bool    `json:"hostPID,omitempty"`
	HostIPC    bool    `json:"hostIPC,omitempty"`
	Network    Network `json:"network,omitempty"`
	// Storage says where the nested image stores live (docker target; default volume).
	Storage Storage `json:"storage,omitempty"`
	Mounts  []Mount `json:"mounts,omitempty"`
	// Devices are host devices passed in, "<path>[:<cgroup permissions>]" (rwm when
	// none is given), docker target only.
	Devices []string `json:"devices,omitempty"`
	// Capabilities are added to or dropped from the runtime's default set (names
	// without CAP_, as Kubernetes writes them: SYS_ADMIN, DAC_READ_SEARCH).
	Capabilities Capabilities `json:"capabilities,omitempty"`
	// Seccomp is RuntimeDefault, Unconfined or Localhost; empty leaves the runtime's
	// default.
	Seccomp Seccomp `json:"seccomp,omitempty"`
	// SeccompProfile is the Localhost profile: a JSON file the harness reads (docker) or
	// a path under the kubelet's seccomp folder (Kubernetes).
	SeccompProfile string `json:"seccompProfile,omitempty"`
	// AppArmor is RuntimeDefault, Unconfined or Localhost/<profile>; empty leaves the
	// runtime's default.
	AppArmor string `json:"appArmor,omitempty"`
	// AllowPrivilegeEscalation false sets no_new_privs (docker: no-new-privileges);
	// unset is true, as GitLab's allow_privilege_escalation default is.
	AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation,omitempty"`
	// ReadOnlyRootFilesystem makes the root read-only, with scratch tmpfs (memory
	// emptyDir) at /tmp, /run and /var/tmp.
	ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem,omitempty"`
	// RunAsUser and RunAsGroup override the image's user (5001) and group.
	RunAsUser  *int64 `json:"runAsUser,omitempty"`
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`
	// HostUsers false runs the pod in a user namespace (Kubernetes only; GitLab's
	// use_kubernetes_user_namespaces).
	HostUsers *bool `json:"hostUsers,omitempty"`
	// Sysctls are namespaced sysctls set for the workspace.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Annotations and Labels are added to the workspace's pod (docker: container);
	// GitLab's agent sets both from its configuration. kwc's own labels are kept.
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// PodSecurity is the Pod Security level the lane's namespace enforces (privileged,
	// baseline, restricted; Kubernetes only).
	PodSecurity string `json:"podSecurity,omitempty"`
	// Image is the lane's workspace image instead of images.workspace (a 127.0.0.1
	// reference or a local name): one without sudo, say.
	Image string `json:"image,omitempty"`
	// Criteria lists the criteria measured in this lane (default: all four). Controls
	// that share the host's namespaces measure only what is safe there: a nested daemon
	// in the host's network namespace would change the host.
	Criteria []string `json:"criteria,omitempty"`
	// Expect is what the lane must achieve per criterion; a criterion missing here is
	// measured and reported but not required (an honest finding, not a target).
	Expect map[string]Verdict `json:"expect,omitempty"`
}

// Mount is an extra mount into a lane's workspace.
type Mount struct {
	Type     MountType `json:"type,omitempty"`
	Source   string    `json:"source,omitempty"`
	Target   string    `json:"target"`
	ReadOnly bool      `json:"readOnly,omitempty"`
}

// Verdict is a criterion's outcome.
type Verdict string

const (
	VerdictPass         Verdict = "pass"
	VerdictFail         Verdict = "fail"
	VerdictSkipped      Verdict = "skipped"
	VerdictInconclusive Verdict = "inconclusive"
)

// Criteria holds the aggregation policy of the tool-based criteria.
type Criteria struct {
	Build ToolPolicy `json:"build,omitempty"`
	Run   ToolPolicy `json:"run,omitempty"`
}

// ToolPolicy says which tools must succeed for a criterion to pass: by default any one
// tool that passes every case is enough.
type ToolPolicy struct {
	Tools []string `json:"tools,omitempty"`
	// Require is "any" (one listed tool passes every case) or "all" (every listed tool).
	Require string `json:"require,omitempty"`
}

// Probes configures the escape probes.
type Probes struct {
	// Timeout bounds one probe run in one context.
	Timeout Duration `json:"timeout,omitempty"`
	// Nested runs the probe set again inside a privileged container started by the
	// workspace's own docker daemon.
	Nested bool `json:"nested,omitempty"`
	// Discovery bounds how far the probes look for what the workspace can reach.
	Discovery Discovery `json:"discovery,omitempty"`
}

// Discovery bounds the probes' walks of mounts and device roots and the questions
// they ask discovered sockets. A walk a bound cut is named in the probe's facts.
type Discovery struct {
	// WalkDepth is how many folders below a mount point a walk descends.
	WalkDepth int `json:"walkDepth,omitempty"`
	// WalkEntries is how many entries the walk of one mount reads.
	WalkEntries int `json:"walkEntries,omitempty"`
	// WalkTime is what one probe's walks may take together.
	WalkTime Duration `json:"walkTime,omitempty"`
	// AskSockets is how many discovered sockets are asked who they are.
	AskSockets int `json:"askSockets,omitempty"`
	// AskTimeout is each socket's time to answer.
	AskTimeout Duration `json:"askTimeout,omitempty"`
	// IPCObjects is how many SysV shared-memory segments are read.
	IPCObjects int `json:"ipcObjects,omitempty"`
}

// Bounds are these bounds as the probe spec carries them to kwc-probe.
func (d Discovery) Bounds() probespec.Bounds {
	return probespec.Bounds{WalkDepth: d.WalkDepth, WalkEntries: d.WalkEntries, WalkMS: int(d.WalkTime.Milliseconds()),
		AskSockets: d.AskSockets, AskMS: int(d.AskTimeout.Milliseconds()), IPCObjects: d.IPCObjects}
}

// Duration is a time.Duration that reads and writes as "90s", "10m".
type Duration struct{ time.Duration }
