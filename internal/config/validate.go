package config

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/kataversion"
)

// Criterion names, in report order.
var Criteria4 = []string{"sudo", "build", "run", "escape"}

// Controls are the escape-probe controls a control lane may provide.
var Controls = []string{"C1", "C2", "C3"}

var laneName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$`)

// ValidLaneName reports whether name can name a lane.
func ValidLaneName(name string) bool { return laneName.MatchString(name) }

// Isolations are the isolation kinds a lane may claim.
var Isolations = []Isolation{IsolationContainer, IsolationVM, IsolationSandbox}

// Validate reports every problem at once, each with how to fix it.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch c.Target {
	case TargetDocker, TargetKind, TargetCluster:
	default:
		add("target %q: use one of docker, kind, cluster", c.Target)
	}
	if len(c.Lanes) == 0 {
		add("lanes: none configured; list at least one lane (see `kwc config defaults`)")
	}
	seen := map[string]bool{}
	lanes := append([]Lane(nil), c.Lanes...)
	if c.Docker.KataLane != nil {
		lanes = append(lanes, *c.Docker.KataLane)
	}
	lanes = append(lanes, c.Docker.SandboxLanes...)
	for i, l := range lanes {
		where := fmt.Sprintf("lanes[%d] (%s)", i, l.Name)
		if seen[l.Name] {
			add("%s: duplicate lane name; names must be unique", where)
		}
		seen[l.Name] = true
		if err := l.Validate(); err != nil {
			add("%s: %w", where, err)
		}
		if err := l.Targeted(c.Target); err != nil {
			add("%s: %w", where, err)
		}
	}
	for _, ref := range []struct{ field, ref string }{{"images.workspace", c.Images.Workspace}, {"images.workspaceBase", c.Images.WorkspaceBase}} {
		if err := LocalImageRef(ref.ref); err != nil {
			add("%s: %w", ref.field, err)
		}
	}
	if c.Target == TargetCluster {
		if c.Cluster.Registry == "" {
			add("cluster.registry: empty; the cluster target pushes the run's images to a registry every node can pull from: name it here or in KWC_REGISTRY (host[:port][/path])")
		} else if _, err := name.NewRepository(c.Cluster.Registry+"/kwc/workspace", name.StrictValidation); err != nil {
			add("cluster.registry %q: %v; use host[:port][/path]", c.Cluster.Registry, err)
		}
		if !path.IsAbs(c.Cluster.ContainerdSocket) {
			add("cluster.containerdSocket %q: must be an absolute path on the nodes", c.Cluster.ContainerdSocket)
		}
		if !path.IsAbs(c.Cluster.ContainerdConfig) {
			add("cluster.containerdConfig %q: must be an absolute path on the nodes", c.Cluster.ContainerdConfig)
		}
	}
	if c.Images.DebianSuite == "" {
		add("images.debianSuite: empty; name the Debian release to build the base from (e.g. bookworm)")
	}
	for name, p := range map[string]ToolPolicy{"criteria.build": c.Criteria.Build, "criteria.run": c.Criteria.Run} {
		if p.Require != "any" && p.Require != "all" {
			add("%s.require %q: use any or all", name, p.Require)
		}
		if len(p.Tools) == 0 {
			add("%s.tools: empty; list the tools to try (docker, buildah, podman)", name)
		}
		for _, t := range p.Tools {
			if !slices.Contains([]string{"docker", "buildah", "podman"}, t) {
				add("%s.tools: unknown tool %q; use docker, buildah or podman", name, t)
			}
		}
	}
	switch c.KindCluster.Kata {
	case KindKataInstall, KindKataNone, KindKataDecoy:
	default:
		add("kindCluster.kata %q: use install (kata-deploy, needs KVM), none (runc lanes only) or decoy (none plus the kata-decoy negative control)", c.KindCluster.Kata)
	}
	if c.Target != TargetDocker {
		if err := c.Kata.validate(); err != nil {
			add("kata: %w", err)
		}
	}
	if c.Probes.Timeout.Duration <= 0 {
		add("probes.timeout: must be positive, e.g. 20s")
	}
	if err := c.Probes.Discovery.validate(c.Probes.Timeout.Duration); err != nil {
		add("probes.discovery: %w", err)
	}
	// Every interval the code reads must resolve: "intervals: null" would otherwise
	// drop the defaults and leave the run to fail half way.
	for _, spec := range slices.Sorted(maps.Keys(IntervalKeys)) {
		for _, key := range IntervalKeys[spec] {
			_, own := c.Intervals[spec+"/"+key]
			_, def := c.Intervals["default/"+key]
			if !own && !def {
				add("intervals: no value for %s/%s (an explicit null or empty intervals map removes the defaults; set only the keys you change)", spec, key)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Intervals)) {
		if err := checkIntervalKey(k); err != nil {
			add("intervals[%q]: %w", k, err)
		}
		if d := c.Intervals[k]; d.Duration <= 0 {
			add("intervals[%q]: must be positive", k)
		}
	}
	return errors.Join(errs...)
}

// Validate checks one lane on its own.
func (l Lane) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !laneName.MatchString(l.Name) {
		add("name %q: use lower-case letters, digits and dashes (it becomes a label and a container name)", l.Name)
	}
	switch l.Role {
	case RoleSubject:
		if l.Control != "" {
			add("control %q set on a subject lane; only control lanes name a control", l.Control)
		}
	case RoleControl:
		if !slices.Contains(Controls, l.Control) {
			add("control %q: a control lane names one of %s", l.Control, strings.Join(Controls, ", "))
		}
		if l.Isolation != IsolationContainer {
			add("isolation %s on a control lane: controls share the node's kernel by design", l.Isolation)
		}
	default:
		add("role %q: use subject or control", l.Role)
	}
	if l.Runtime == "" {
		add("runtime: empty; name the engine runtime (docker: runc, io.containerd.kata.v2) or RuntimeClass")
	}
	switch l.Shape {
	case ShapeGitLab:
		if l.Privileged {
			add("shape gitlab with privileged: true; GitLab never generates privileged pods, use shape privileged")
		}
	case ShapePrivileged:
		if !l.Privileged {
			add("shape privileged needs privileged: true")
		}
	default:
		add("shape %q: use gitlab or privileged", l.Shape)
	}
	if !slices.Contains(Isolations, l.Isolation) {
		add("isolation %q: use container, vm or sandbox", l.Isolation)
	}
	if l.Storage != StorageVolume && l.Storage != StorageTmpfs {
		add("storage %q: use volume or tmpfs", l.Storage)
	}
	if l.Network != NetworkNone && l.Network != NetworkHost {
		add("network %q: use none or host", l.Network)
	}
	for i, m := range l.Mounts {
		switch m.Type {
		case MountBind:
			if !path.IsAbs(m.Source) {
				add("mounts[%d].source %q: a bind mount needs an absolute host path", i, m.Source)
			}
		case MountEngineSocket, MountEngineSocketDir:
			if m.Source != "" {
				add("mounts[%d]: an %s mount takes its source from DOCKER_HOST (or the node's containerd socket); drop source", i, m.Type)
			}
		default:
			add("mounts[%d].type %q: use bind, engine-socket or engine-socket-dir", i, m.Type)
		}
		if !path.IsAbs(m.Target) {
			add("mounts[%d].target %q: must be an absolute path in the workspace", i, m.Target)
		}
	}
	for _, c := range append(append([]string(nil), l.Capabilities.Add...), l.Capabilities.Drop...) {
		if !capabilityName.MatchString(c) || strings.HasPrefix(c, "CAP_") {
			add("capabilities: %q: write the name without CAP_, in capitals (SYS_ADMIN), or ALL", c)
		}
	}
	switch l.Seccomp {
	case "", SeccompRuntimeDefault, SeccompUnconfined:
		if l.SeccompProfile != "" {
			add("seccompProfile %q set with seccomp %q: a profile goes with seccomp: Localhost", l.SeccompProfile, l.Seccomp)
		}
	case SeccompLocalhost:
		if l.SeccompProfile == "" {
			add("seccomp Localhost needs seccompProfile: a JSON profile (docker) or a path under the kubelet's seccomp folder (Kubernetes)")
		}
	default:
		add("seccomp %q: RuntimeDefault, Unconfined or Localhost", l.Seccomp)
	}
	switch {
	case l.AppArmor == "", l.AppArmor == "RuntimeDefault", l.AppArmor == "Unconfined":
	case strings.HasPrefix(l.AppArmor, "Localhost/") && len(l.AppArmor) > len("Localhost/"):
	default:
		add("appArmor %q: RuntimeDefault, Unconfined or Localhost/<profile>", l.AppArmor)
	}
	for _, id := range []*int64{l.RunAsUser, l.RunAsGroup} {
		if id != nil && *id < 0 {
			add("runAsUser/runAsGroup %d: an id is 0 or more", *id)
		}
	}
	for k := range l.Sysctls {
		if !sysctlName.MatchString(k) {
			add("sysctls: %q is not a sysctl name (kernel.shm_rmid_forced, net.ipv4.ping_group_range)", k)
		}
	}
	for k := range l.Labels {
		if strings.HasPrefix(k, "kwc.dev/") || k == "app.kubernetes.io/name" {
			add("labels: %q is kwc's own label; it names the run and lane and cannot be set", k)
		}
	}
	switch l.PodSecurity {
	case "", "privileged", "baseline", "restricted":
	default:
		add("podSecurity %q: privileged, baseline or restricted", l.PodSecurity)
	}
	if l.Image != "" && strings.Contains(strings.SplitN(l.Image, "/", 2)[0], ".") {
		if err := LocalImageRef(l.Image); err != nil {
			add("image: %w", err)
		}
	}
	for _, d := range l.Devices {
		p, perms, _ := strings.Cut(d, ":")
		if !strings.HasPrefix(p, "/dev/") && p != DeviceRootDisk {
			add("devices: %q is not under /dev (or %s, the node's root disk)", d, DeviceRootDisk)
		}
		if perms != "" && strings.Trim(perms, "rwm") != "" {
			add("devices: %q: permissions are letters of rwm", d)
		}
	}
	for _, crit := range l.Criteria {
		if !slices.Contains(Criteria4, crit) {
			add("criteria: unknown criterion %q; use %s", crit, strings.Join(Criteria4, ", "))
		}
	}
	for crit, v := range l.Expect {
		if !slices.Contains(Criteria4, crit) {
			add("expect: unknown criterion %q; use %s", crit, strings.Join(Criteria4, ", "))
		} else if len(l.Criteria) > 0 && !slices.Contains(l.Criteria, crit) {
			add("expect[%s]: the lane does not measure %s; add it to criteria or drop the expectation", crit, crit)
		}
		if v != VerdictPass && v != VerdictFail {
			add("expect[%s] %q: expect pass or fail", crit, v)
		}
	}
	return errors.Join(errs...)
}

// DeviceRootDisk names, in a lane's devices, the block device of the node's root
// filesystem, whatever it is called on this host.
const DeviceRootDisk = "root-disk"

var sysctlName = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$`)

// Targeted refuses lane options that the target cannot express, saying where they
// can run: a lane that silently lost its setting would be judged as another lane.
func (l Lane) Targeted(t Target) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch t {
	case TargetDocker:
		if l.HostUsers != nil && !*l.HostUsers {
			add("hostUsers: false: Docker runs no per-container user namespace; run this lane with target kind or cluster")
		}
		if l.PodSecurity != "" {
			add("podSecurity %s: Pod Security admission is Kubernetes'; run this lane with target kind or cluster", l.PodSecurity)
		}
	default:
		if len(l.Devices) > 0 {
			add("devices %v: Kubernetes pods get devices through device plugins or privileged, not a device list; run this lane with target docker", l.Devices)
		}
	}
	return errors.Join(errs...)
}

// LocalImageRef accepts only references kwc can resolve without pulling: on
// 127.0.0.1 (or localhost), never a remote registry.
func LocalImageRef(ref string) error {
	if ref == "" {
		return errors.New("empty image reference")
	}
	host := strings.SplitN(ref, "/", 2)[0]
	h := strings.Split(host, ":")[0]
	if h != "127.0.0.1" && h != "localhost" {
		return fmt.Errorf("%q is not a 127.0.0.1 reference; kwc builds its images locally and never pulls (use 127.0.0.1/<name>:<tag>)", ref)
	}
	return nil
}

// KataFloor is the oldest Kata release kwc installs: the newest fix of an advisory
// that affects every earlier release (an advisory whose affected range is not
// published counts as affecting every earlier release). A unit test derives it from
// fixtures/kata-advisories.yaml, so the table and this line cannot drift apart.
const KataFloor = "4.3.0"

// kataFloorWhy names the advisories that set the floor, for the refusal.
const kataFloorWhy = "Kata 4.3.0's notes list two security fixes whose affected ranges are not published (a permissive annotation allowlist, CVSS 7.9; dragonball virtio out-of-bounds access, CVSS 6.4), and earlier releases have further host-escape advisories (GHSA-rr59-xxvx-96qr, GHSA-2gv2-cffp-j227, GHSA-mp2j-xm59-qfgw)"

var capabilityName = regexp.MustCompile(`^(ALL|[A-Z][A-Z_]*[A-Z])$`)

var kataVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

func (k Kata) validate() error {
	var errs []error
	if !kataVersion.MatchString(k.Version) {
		errs = append(errs, fmt.Errorf("version %q: pin an exact release such as %s", k.Version, KataFloor))
	} else if kataversion.MustParse(k.Version).Less(kataversion.MustParse(KataFloor)) {
		errs = append(errs, fmt.Errorf("version %s: use %s or later; %s", k.Version, KataFloor, kataFloorWhy))
	}
	if !strings.HasPrefix(k.Chart, "oci://") && !strings.HasPrefix(k.Chart, "/") {
		errs = append(errs, fmt.Errorf("chart %q: an oci:// reference or a local chart directory", k.Chart))
	}
	if len(k.Shims) == 0 {
		errs = append(errs, errors.New("shims: none; list the hypervisors to test (e.g. clh, qemu)"))
	}
	for _, s := range k.Shims {
		if why, ok := RemovedHypervisors[s]; ok {
			errs = append(errs, fmt.Errorf("shims: %s: %s", s, why))
			continue
		}
		if _, ok := katashims.Lookup(s); !ok {
			errs = append(errs, fmt.Errorf("shims: unknown shim %q; kata-deploy %s ships %s (test other RuntimeClasses as lanes on the cluster target)", s, KataFloor, strings.Join(katashims.Names(), ", ")))
		}
	}
	for _, s := range k.Shapes {
		if s != ShapeGitLab && s != ShapePrivileged {
			errs = append(errs, fmt.Errorf("shapes: %q; use gitlab or privileged", s))
		}
	}
	if k.ImageStore != "memory" && k.ImageStore != "disk" {
		errs = append(errs, fmt.Errorf("imageStore %q: memory or disk", k.ImageStore))
	}
	return errors.Join(errs...)
}

// KataLanes are the lanes the Kata shims add on the kind and cluster targets: each
// shim in each shape, VM-isolated. The GitLab shape must give sudo and no escape;
// what it can build and run is a finding (dockerd needs privileges GitLab never
// grants). The privileged-in-guest shape must meet all four.
func (c *Config) KataLanes() []Lane {
	var out []Lane
	for _, shim := range c.Kata.Shims {
		for _, shape := range c.Kata.Shapes {
			l := Lane{Name: "kata-" + shim + "-" + string(shape), Role: RoleSubject, Runtime: "kata-" + shim,
				Shape: shape, Isolation: IsolationVM, Privileged: shape == ShapePrivileged}
			l.Expect = map[string]Verdict{"sudo": VerdictPass, "escape": VerdictPass}
			if shape == ShapePrivileged {
				l.Expect["build"], l.Expect["run"] = VerdictPass, VerdictPass
			}
			l.Default()
			out = append(out, l)
		}
	}
	return out
}

// KindLanes are the kind target's lanes, known before the cluster exists: the
// configured ones, plus per kindCluster.kata a lane per shim and shape (install), or
// a VM-claiming lane per shape on the kata-decoy RuntimeClass (decoy).
func (c *Config) KindLanes() ([]Lane, error) {
	switch c.KindCluster.Kata {
	case KindKataNone:
		return c.ClusterLanes(nil)
	case KindKataDecoy:
		return c.ClusterLanes([]RuntimeClass{{Name: DecoyRuntimeClass, Handler: DecoyRuntimeClass}})
	}
	return append(append([]Lane(nil), c.Lanes...), c.KataLanes()...), nil
}

// RuntimeClass is what lane selection needs to know of a cluster's RuntimeClass.
type RuntimeClass struct {
	Name, Handler string
}

// IsKata reports whether a RuntimeClass runs pods in a Kata VM.
func (r RuntimeClass) IsKata() bool { return strings.HasPrefix(r.Handler, "kata") }

// ClusterLanes returns the lanes of an existing cluster: the configured lanes (whose
// runtime must be "default" or a RuntimeClass present) and a subject lane per shape for
// each RuntimeClass chosen by cluster.runtimeClasses (or, when that is empty, each
// Kata RuntimeClass present that is not a -debug or -devkit triage class).
func (c *Config) ClusterLanes(present []RuntimeClass) ([]Lane, error) {
	byName := map[string]RuntimeClass{}
	var names []string
	for _, r := range present {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	var errs []error
	out := append([]Lane(nil), c.Lanes...)
	for _, l := range out {
		if _, ok := byName[l.Runtime]; !ok && l.Runtime != "default" {
			errs = append(errs, fmt.Errorf("lane %s: RuntimeClass %q is not in the cluster (present: %s); install it or drop the lane", l.Name, l.Runtime, strings.Join(names, ", ")))
		}
	}
	chosen := c.Cluster.RuntimeClasses
	if len(chosen) == 0 {
		for _, r := range present {
			if r.IsKata() && !strings.HasSuffix(r.Name, "-debug") && !strings.HasSuffix(r.Name, "-devkit") {
				chosen = append(chosen, r.Name)
			}
		}
	}
	for _, n := range chosen {
		r, ok := byName[n]
		if !ok {
			errs = append(errs, fmt.Errorf("cluster.runtimeClasses: %q is not in the cluster (present: %s)", n, strings.Join(names, ", ")))
			continue
		}
		shapes := c.Kata.Shapes
		if !r.IsKata() {
			shapes = []Shape{ShapeGitLab}
		}
		for _, shape := range shapes {
			l := Lane{Name: r.Name + "-" + string(shape), Role: RoleSubject, Runtime: r.Name, Shape: shape,
				Privileged: shape == ShapePrivileged, Expect: map[string]Verdict{"sudo": VerdictPass, "escape": VerdictPass}}
			if r.IsKata() {
				l.Isolation = IsolationVM
				if shape == ShapePrivileged {
					l.Expect["build"], l.Expect["run"] = VerdictPass, VerdictPass
				}
			}
			l.Default()
			if _, dup := c.Lane(l.Name); dup {
				continue
			}
			if err := l.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("RuntimeClass %s: %w", r.Name, err))
				continue
			}
			out = append(out, l)
		}
	}
	return out, errors.Join(errs...)
}

// Measures reports whether the lane measures a criterion.
func (l Lane) Measures(criterion string) bool { return slices.Contains(l.Criteria, criterion) }

// Lane returns the named lane.
func (c *Config) Lane(name string) (Lane, bool) {
	for _, l := range c.Lanes {
		if l.Name == name {
			return l, true
		}
	}
	return Lane{}, false
}

// EffectiveLanes returns the configured lanes plus the lanes the target's registered
// runtimes add (the kata lane where the engine registers Kata). A configured lane
// whose runtime is not registered is an error naming the runtimes that are.
func (c *Config) EffectiveLanes(registered []string) ([]Lane, error) {
	out := append([]Lane(nil), c.Lanes...)
	var errs []error
	for _, l := range out {
		if !slices.Contains(registered, l.Runtime) {
			errs = append(errs, fmt.Errorf("lane %s: runtime %q is not registered with the engine (registered: %s); install it or drop the lane", l.Name, l.Runtime, strings.Join(registered, ", ")))
		}
	}
	if kl := c.Docker.KataLane; kl != nil && c.Docker.KataRuntime != "" && slices.Contains(registered, c.Docker.KataRuntime) {
		if _, dup := c.Lane(kl.Name); !dup {
			out = append(out, *kl)
		}
	}
	if c.Docker.SandboxRuntime != "" && slices.Contains(registered, c.Docker.SandboxRuntime) {
		for _, l := range c.Docker.SandboxLanes {
			if _, dup := c.Lane(l.Name); !dup {
				out = append(out, l)
			}
		}
	}
	return out, errors.Join(errs...)
}

// IntervalKeys are the keys each part of the suite reads; "default" keys apply to
// every part unless that part sets its own (sudo/exec overrides default/exec).
var IntervalKeys = map[string][]string{
	"default": {"exec", "workspace-start"},
	"sudo":    {"apt"},
	"build":   {"image", "fixture"},
	"run":     {"container"},
	"escape":  {"probe"},
	"kind":    {"setup", "kata-ready", "create"},
	"cluster": {"agent-start", "agent-exec", "namespace-delete", "uninstall"},
}

// checkIntervalKey accepts spec/key where key is one spec reads or a default key: a
// key nothing reads would be a silent no-op.
func checkIntervalKey(k string) error {
	spec, key, ok := strings.Cut(k, "/")
	own, known := IntervalKeys[spec]
	switch {
	case !ok || strings.Contains(key, "/"):
		return errors.New("keys are spec/key, e.g. default/exec")
	case !known:
		return fmt.Errorf("unknown part %q; use one of %s", spec, strings.Join(slices.Sorted(maps.Keys(IntervalKeys)), ", "))
	case slices.Contains(own, key) || slices.Contains(IntervalKeys["default"], key):
		return nil
	}
	return fmt.Errorf("%s reads no interval %q; it reads %s", spec, key, strings.Join(append(append([]string{}, own...), IntervalKeys["default"]...), ", "))
}

// RemovedHypervisors are hypervisors Kata no longer supports, with why no Kata kwc
// accepts can run them. The seed investigation named ACRN; the answer is plain.
var RemovedHypervisors = map[string]string{
	"acrn": "Kata removed ACRN support in 3.10.0 (kata-containers PR #10239, 2024), so no release at or above kwc's security floor (" + KataFloor + ") can run it; " +
		"a cluster whose nodes provide an ACRN RuntimeClass is still tested with TARGET=cluster and that class named in cluster.runtimeClasses",
}

// SocketsAskedAtOnce is how many discovered sockets P13 asks side by side.
const SocketsAskedAtOnce = 8

// validate refuses bounds that are not positive, or that cannot finish within the
// probe timeout: a probe cut by its timeout is an error in every lane.
func (d Discovery) validate(timeout time.Duration) error {
	var errs []error
	for name, v := range map[string]int{"walkDepth": d.WalkDepth, "walkEntries": d.WalkEntries, "askSockets": d.AskSockets, "ipcObjects": d.IPCObjects} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive number, got %d", name, v))
		}
	}
	for name, v := range map[string]Duration{"walkTime": d.WalkTime, "askTimeout": d.AskTimeout} {
		if v.Duration <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration such as 2s", name))
		}
	}
	rounds := (d.AskSockets + SocketsAskedAtOnce - 1) / SocketsAskedAtOnce
	if worst := d.WalkTime.Duration + time.Duration(rounds)*d.AskTimeout.Duration; timeout > 0 && worst >= timeout {
		errs = append(errs, fmt.Errorf("walkTime %s plus %d rounds of askTimeout %s is %s, not within probes.timeout %s: lower the bounds or raise probes.timeout",
			d.WalkTime, rounds, d.AskTimeout, worst, timeout))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
