package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/probespec"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kwc.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmbeddedDefaultsLoadAndValidate(t *testing.T) {
	c, err := Load("", Overrides{})
	if err != nil {
		t.Fatalf("the embedded defaults must load: %v", err)
	}
	if c.Target != TargetKind {
		t.Fatalf("default target %q, want kind (make e2e is the kind job)", c.Target)
	}
	controls := map[string]bool{}
	for _, l := range c.Lanes {
		if l.Role == RoleControl {
			controls[l.Control] = true
		}
		if len(l.Criteria) == 0 || l.Isolation == "" || l.Network == "" {
			t.Errorf("lane %s not defaulted: %+v", l.Name, l)
		}
	}
	for _, want := range Controls {
		if !controls[want] {
			t.Errorf("defaults lack control lane %s: every probe needs its control", want)
		}
	}
}

func TestUnknownFieldIsAnErrorNamingFieldAndFile(t *testing.T) {
	p := write(t, "apiVersion: kwc.dev/v1alpha1\nkind: Config\nlanes:\n  - name: x\n    role: subject\n    runtime: default\n    privilegd: true\n")
	_, err := Load(p, Overrides{})
	if err == nil {
		t.Fatal("a misspelt field must be rejected")
	}
	if !strings.Contains(err.Error(), "privilegd") || !strings.Contains(err.Error(), p) {
		t.Fatalf("error must name the field and the file: %v", err)
	}
}

func TestWrongAPIVersionIsRejected(t *testing.T) {
	p := write(t, "apiVersion: kwc.dev/v2\nkind: Config\n")
	if _, err := Load(p, Overrides{}); err == nil || !strings.Contains(err.Error(), "kwc.dev/v1alpha1") {
		t.Fatalf("want an error naming the supported apiVersion, got %v", err)
	}
}

func TestUserLanesReplaceDefaultLanes(t *testing.T) {
	p := write(t, `apiVersion: kwc.dev/v1alpha1
kind: Config
target: docker
lanes:
  - name: only
    role: subject
    runtime: default
`)
	c, err := Load(p, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lanes) != 1 || c.Lanes[0].Name != "only" {
		t.Fatalf("user lanes must replace the defaults whole, got %+v", c.Lanes)
	}
	if c.Images.Workspace == "" || c.Intervals["default/exec"].Duration == 0 {
		t.Fatal("scalars and maps not set by the user file must keep their defaults")
	}
}

func TestOverridesWin(t *testing.T) {
	c, err := Load("", Overrides{Target: "docker", ReportsDir: "/tmp/r", Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Target != TargetDocker || c.ReportsDir != "/tmp/r" || !c.Keep {
		t.Fatalf("flags must override files: %+v", c)
	}
}

func TestValidateSaysHowToFix(t *testing.T) {
	cases := map[string]struct {
		lane Lane
		want string
	}{
		"bad role":          {Lane{Name: "a", Role: "boss", Runtime: "default"}, "use subject or control"},
		"control w/o id":    {Lane{Name: "a", Role: RoleControl, Runtime: "default"}, "C1, C2, C3"},
		"gitlab privileged": {Lane{Name: "a", Role: RoleSubject, Runtime: "default", Shape: ShapeGitLab, Privileged: true}, "use shape privileged"},
		"bad name":          {Lane{Name: "A_B", Role: RoleSubject, Runtime: "default"}, "lower-case"},
		"relative mount":    {Lane{Name: "a", Role: RoleSubject, Runtime: "default", Mounts: []Mount{{Type: MountBind, Source: "x", Target: "/y"}}}, "absolute host path"},
		"vm control":        {Lane{Name: "a", Role: RoleControl, Control: "C1", Runtime: "default", Isolation: IsolationVM}, "share the node's kernel"},
		"unknown criterion": {Lane{Name: "a", Role: RoleSubject, Runtime: "default", Criteria: []string{"fly"}}, "unknown criterion"},
		"expect unmeasured": {Lane{Name: "a", Role: RoleSubject, Runtime: "default", Criteria: []string{"sudo"}, Expect: map[string]Verdict{"build": VerdictPass}}, "does not measure build"},
		"expect skipped":    {Lane{Name: "a", Role: RoleSubject, Runtime: "default", Expect: map[string]Verdict{"sudo": VerdictSkipped}}, "expect pass or fail"},
	}
	for name, tc := range cases {
		l := tc.lane
		l.Default()
		err := l.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", name, tc.want, err)
		}
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c, err := Decode([]byte("apiVersion: kwc.dev/v1alpha1\nkind: Config\ntarget: moon\nimages: {workspace: docker.io/library/debian}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	c.Default()
	err = c.Validate()
	for _, want := range []string{"target \"moon\"", "lanes: none configured", "not a 127.0.0.1 reference", "debianSuite"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q among the problems, got %v", want, err)
		}
	}
}

func TestDuplicateLaneNames(t *testing.T) {
	c, _ := Load("", Overrides{})
	c.Lanes = append(c.Lanes, c.Lanes[0])
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate lane name") {
		t.Fatalf("want a duplicate-name error, got %v", err)
	}
}

func TestEffectiveLanesAddKataWhereRegistered(t *testing.T) {
	c, err := Load("", Overrides{Target: "docker"})
	if err != nil {
		t.Fatal(err)
	}
	lanes, err := c.EffectiveLanes([]string{"default", "runc"})
	if err != nil || len(lanes) != len(c.Lanes) {
		t.Fatalf("without Kata: %d lanes, %v", len(lanes), err)
	}
	lanes, err = c.EffectiveLanes([]string{"default", "runc", "io.containerd.kata.v2"})
	if err != nil {
		t.Fatal(err)
	}
	last := lanes[len(lanes)-1]
	if last.Name != "kata" || last.Isolation != IsolationVM || last.Role != RoleSubject {
		t.Fatalf("the engine's Kata runtime must add a VM-isolated kata subject lane, got %+v", last)
	}
}

func TestEffectiveLanesRejectsUnregisteredRuntime(t *testing.T) {
	c, _ := Load("", Overrides{Target: "docker"})
	c.Lanes[0].Runtime = "kata-fc"
	_, err := c.EffectiveLanes([]string{"default"})
	if err == nil || !strings.Contains(err.Error(), "kata-fc") || !strings.Contains(err.Error(), "registered: default") {
		t.Fatalf("want an error naming the runtime and what is registered, got %v", err)
	}
}

func TestLocalImageRef(t *testing.T) {
	for _, ok := range []string{"127.0.0.1/kwc/x:1", "127.0.0.1:5000/a", "localhost/a:b"} {
		if err := LocalImageRef(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "debian:12", "docker.io/library/busybox", "10.0.0.1/x"} {
		if err := LocalImageRef(bad); err == nil {
			t.Errorf("%q must be rejected: kwc never pulls", bad)
		}
	}
}

func TestIntervalFallsBackToDefault(t *testing.T) {
	c, _ := Load("", Overrides{})
	if c.Interval("build", "image") != c.Intervals["build/image"].Duration {
		t.Fatal("spec/key must win")
	}
	if c.Interval("nosuchspec", "exec") != c.Intervals["default/exec"].Duration {
		t.Fatal("default/key must be the fallback")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown key must panic with its name")
		}
	}()
	c.Interval("x", "nosuchkey")
}

func TestKataLanesPerShimAndShape(t *testing.T) {
	c, err := Load("", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	lanes := c.KataLanes()
	if len(lanes) != len(c.Kata.Shims)*2 {
		t.Fatalf("%d lanes for %d shims in two shapes", len(lanes), len(c.Kata.Shims))
	}
	for _, l := range lanes {
		if err := l.Validate(); err != nil {
			t.Errorf("%s: %v", l.Name, err)
		}
		if l.Isolation != IsolationVM || l.Runtime != "kata-"+strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(l.Name, "kata-"), "-gitlab"), "-privileged") {
			t.Errorf("%s: %+v", l.Name, l)
		}
		if _, ok := l.Expect["build"]; ok != (l.Shape == ShapePrivileged) {
			t.Errorf("%s: only the privileged shape must build", l.Name)
		}
	}
	for _, s := range c.Kata.Shims {
		if s == "fc" {
			t.Error("fc needs a devmapper pool the kind node lacks: it must be opt-in")
		}
	}
	if !slices.Equal(c.Kata.Shims, katashims.PlainKVM()) || c.Kata.Shims[0] != katashims.DefaultShim {
		t.Errorf("the default shims %v are not the plain-KVM rows of the shim table %v", c.Kata.Shims, katashims.PlainKVM())
	}
	if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(string(DefaultYAML()), "#", "")), " "), strings.Join(katashims.PlainKVM(), ", ")) {
		t.Error("default.yaml's comment on shims does not list the shim table's plain-KVM shims")
	}
	if c.Kata.Version != KataFloor {
		t.Errorf("default Kata %s, floor %s: the default pins the newest release kwc knows", c.Kata.Version, KataFloor)
	}
}

func TestKataValidation(t *testing.T) {
	for body, want := range map[string]string{
		"kata: {version: 3.28.0}":   "use 4.3.0 or later",
		"kata: {version: 4.2.0}":    "affected ranges are not published",
		"kata: {shims: [qemu-snp]}": "", // a known shim that needs hardware is the user's call
		"lanes: [{name: x, role: subject, runtime: default, capabilities: {add: [CAP_SYS_ADMIN]}}]":             "without CAP_",
		"lanes: [{name: x, role: subject, runtime: default, seccomp: off}]":                                     "RuntimeDefault, Unconfined or Localhost",
		"lanes: [{name: x, role: subject, runtime: default, capabilities: {drop: [ALL]}, seccomp: Unconfined}]": "",
		"kata: {version: latest}":      "pin an exact release",
		"kata: {shims: [acrn]}":        "removed ACRN support in 3.10.0",
		"kata: {shims: [nosuch]}":      "test other RuntimeClasses as lanes on the cluster target",
		"kata: {chart: ghcr.io/x/y}":   "oci://",
		"kata: {imageStore: virtiofs}": "memory or disk",
		// Lane options that describe real workspaces, each validated.
		"lanes: [{name: x, role: subject, runtime: default, seccomp: Localhost}]":                                                                                  "needs seccompProfile",
		"lanes: [{name: x, role: subject, runtime: default, seccompProfile: /p.json}]":                                                                             "goes with seccomp: Localhost",
		"lanes: [{name: x, role: subject, runtime: default, appArmor: strict}]":                                                                                    "Localhost/<profile>",
		"lanes: [{name: x, role: subject, runtime: default, appArmor: Localhost/kwc-ws}]":                                                                          "",
		"lanes: [{name: x, role: subject, runtime: default, runAsUser: -1}]":                                                                                       "an id is 0 or more",
		"lanes: [{name: x, role: subject, runtime: default, sysctls: {'kernel shm': '1'}}]":                                                                        "not a sysctl name",
		"lanes: [{name: x, role: subject, runtime: default, labels: {kwc.dev/run: mine}}]":                                                                         "kwc's own label",
		"lanes: [{name: x, role: subject, runtime: default, podSecurity: loose}]":                                                                                  "privileged, baseline or restricted",
		"lanes: [{name: x, role: subject, runtime: default, image: quay.io/x/y:1}]":                                                                                "not a 127.0.0.1 reference",
		"lanes: [{name: x, role: subject, runtime: default, devices: ['/dev/loop0:rwx']}]":                                                                         "letters of rwm",
		"target: docker\nlanes: [{name: x, role: subject, runtime: default, hostUsers: false}]":                                                                    "run this lane with target kind or cluster",
		"target: docker\nlanes: [{name: x, role: subject, runtime: default, podSecurity: baseline}]":                                                               "Pod Security admission is Kubernetes'",
		"target: docker\nlanes: [{name: x, role: subject, runtime: default, devices: [root-disk], readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}]": "",
	} {
		p := write(t, "apiVersion: kwc.dev/v1alpha1\nkind: Config\n"+body+"\n")
		_, err := Load(p, Overrides{})
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", body, want, err)
		}
	}
	p := write(t, "apiVersion: kwc.dev/v1alpha1\nkind: Config\nkata: {version: 3.28.0}\n")
	if _, err := Load(p, Overrides{Target: "docker"}); err != nil {
		t.Errorf("the docker target installs no Kata; its kata section is not checked: %v", err)
	}
}

func TestClusterTargetNeedsARegistry(t *testing.T) {
	_, err := Load("", Overrides{Target: "cluster"})
	if err == nil || !strings.Contains(err.Error(), "cluster.registry: empty") || !strings.Contains(err.Error(), "KWC_REGISTRY") {
		t.Fatalf("want the missing registry named with its fix, got %v", err)
	}
	_, err = Load("", Overrides{Target: "cluster", Registry: "Not A Registry"})
	if err == nil || !strings.Contains(err.Error(), `cluster.registry "Not A Registry"`) {
		t.Fatalf("want a bad registry refused, got %v", err)
	}
	c, err := Load("", Overrides{Target: "cluster", Registry: "127.0.0.1:5000", ContainerdSocket: "/tmp/x/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.ContainerdSocket != "/tmp/x/containerd.sock" {
		t.Fatalf("the socket override was not applied: %q", c.Cluster.ContainerdSocket)
	}
}

func TestClusterLanesFromRuntimeClasses(t *testing.T) {
	c, err := Load("", Overrides{Target: "cluster", Registry: "127.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	present := []RuntimeClass{{"kata-qemu", "kata-qemu"}, {"kata-qemu-debug", "kata-qemu-debug"}, {"runc", "runc"}, {"gvisor", "runsc"}}
	lanes, err := c.ClusterLanes(present)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Lane{}
	for _, l := range lanes {
		got[l.Name] = l
	}
	for _, want := range []string{"runc-gitlab", "runc-privileged", "kata-qemu-gitlab", "kata-qemu-privileged"} {
		if _, ok := got[want]; !ok {
			t.Errorf("lane %s missing; got %v", want, got)
		}
	}
	for _, unwanted := range []string{"kata-qemu-debug-gitlab", "runc-gitlab-gitlab", "gvisor-gitlab"} {
		if _, ok := got[unwanted]; ok {
			t.Errorf("lane %s must not be chosen by default", unwanted)
		}
	}
	if l := got["kata-qemu-privileged"]; l.Isolation != IsolationVM || !l.Privileged || l.Expect["build"] != VerdictPass {
		t.Errorf("a Kata lane is VM-isolated and must build: %+v", l)
	}

	// Named classes: any RuntimeClass, a non-Kata one in the GitLab shape only.
	c.Cluster.RuntimeClasses = []string{"gvisor", "acrn"}
	lanes, err = c.ClusterLanes(present)
	if err == nil || !strings.Contains(err.Error(), `"acrn" is not in the cluster`) {
		t.Fatalf("a named class that is absent must be an error, got %v", err)
	}
	var gv []Lane
	for _, l := range lanes {
		if l.Runtime == "gvisor" {
			gv = append(gv, l)
		}
	}
	if len(gv) != 1 || gv[0].Shape != ShapeGitLab || gv[0].Isolation != IsolationContainer || gv[0].Privileged {
		t.Fatalf("gvisor must be one unprivileged GitLab-shaped lane, got %+v", gv)
	}
}

// The discovery bounds default to what the probe falls back to, and bounds that
// cannot finish within the probe timeout are refused with the sum that says why.
func TestDiscoveryBoundsDefaultAndValidate(t *testing.T) {
	c, err := Load("", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Probes.Discovery.Bounds(), probespec.DefaultBounds(); got != want {
		t.Fatalf("default.yaml's probes.discovery %+v is not probespec.DefaultBounds %+v", got, want)
	}
	c.Probes.Discovery.AskSockets = 200
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not within probes.timeout") {
		t.Fatalf("200 sockets at 800ms within 20s: %v", err)
	}
	c.Probes.Discovery.AskSockets, c.Probes.Discovery.WalkDepth = 32, 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "walkDepth: must be a positive") {
		t.Fatalf("walkDepth 0: %v", err)
	}
}

// Issue 15: kind's lanes are known before the cluster exists, for every
// kindCluster.kata; a mode outside the three is refused with the choices.
func TestKindLanesPerKataMode(t *testing.T) {
	names := func(ls []Lane) (out []string) {
		for _, l := range ls {
			out = append(out, l.Name)
		}
		return out
	}
	for _, tc := range []struct {
		kata KindKata
		want []string
	}{
		{KindKataNone, []string{"runc-gitlab", "runc-privileged", "c2-host-namespaces", "c3-host-path"}},
		{KindKataDecoy, []string{"runc-gitlab", "runc-privileged", "c2-host-namespaces", "c3-host-path", "kata-decoy-gitlab", "kata-decoy-privileged"}},
	} {
		c, err := Load("", Overrides{})
		if err != nil {
			t.Fatal(err)
		}
		c.KindCluster.Kata = tc.kata
		got, err := c.KindLanes()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), tc.want) {
			t.Errorf("%s: lanes %v, want %v", tc.kata, names(got), tc.want)
		}
	}
	c, err := Load("", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	install, err := c.KindLanes()
	if err != nil || len(install) != len(c.Lanes)+len(c.KataLanes()) {
		t.Fatalf("install: %d lanes (%v), want the configured and a lane per shim and shape", len(install), err)
	}
	c.KindCluster.Kata = "maybe"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "use install") {
		t.Fatalf("kindCluster.kata maybe: %v", err)
	}
}
