package kataconfig

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"kwc.dev/kwc/fixtures"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/kataversion"
	"kwc.dev/kwc/internal/kube/annotationcheck"
)

func recorded(t *testing.T, name string) Node {
	t.Helper()
	fsys, err := fixtures.NodeConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	n := Node{KataVersion: strings.TrimSpace(string(read("kata-version"))), Containerd: map[string][]byte{"/etc/containerd/config.toml": read("containerd.toml")}, KataConfigs: map[string][]byte{}}
	cfgs, _ := fs.Glob(fsys, "configuration-*.toml")
	for _, c := range cfgs {
		n.KataConfigs["/opt/kata/share/defaults/kata-containers/"+c] = read(c)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(read("processes.txt"))), "\n") {
		n.Processes = append(n.Processes, l)
	}
	return n
}

func advisories(t *testing.T) []Advisory {
	a, err := DecodeAdvisories(fixtures.Advisories())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSafeNodeBlocksEveryPath(t *testing.T) {
	for _, f := range Check(recorded(t, "safe"), advisories(t)) {
		if f.Result != verdict.Blocked {
			t.Errorf("%s: %s (%s)", f.ID, f.Result, f.Reason)
		}
	}
}

// The misconfigured node is each check's control: every check must find its path.
func TestMisconfiguredNodeReachesEveryPath(t *testing.T) {
	want := map[string]string{
		"K01-kata-advisories":                 "GHSA-rr59-xxvx-96qr",
		"K02-privileged-without-host-devices": "kata-qemu",
		"K03-hypervisor-annotations":          "virtio_fs_extra_args",
		"K04-virtiofsd-sandboxed":             "--sandbox none",
		"K05-debug-console":                   "debug_console_enabled = true",
	}
	findings := Check(recorded(t, "misconfigured"), advisories(t))
	if len(findings) != len(want) {
		t.Fatalf("%d findings, want %d", len(findings), len(want))
	}
	for _, f := range findings {
		if f.Result != verdict.Reached || !strings.Contains(f.Reason, want[f.ID]) {
			t.Errorf("%s: %s (%s), want reached naming %q", f.ID, f.Result, f.Reason, want[f.ID])
		}
		if len(f.Techniques) == 0 {
			t.Errorf("%s: no technique IDs", f.ID)
		}
	}
}

func TestVersionOrdering(t *testing.T) {
	adv := []Advisory{{ID: "A", Fixed: "3.31.0", Confirmed: true}}
	for v, want := range map[string]verdict.Result{"3.30.9": verdict.Reached, "3.31.0": verdict.Blocked, "4.0.0": verdict.Blocked, "3.4.0": verdict.Reached, "v3.31.1-rc1": verdict.Blocked, "": verdict.Error, "3.31": verdict.Error} {
		if got := checkVersion(v, adv, nil, nil).Result; got != want {
			t.Errorf("Kata %q: %s, want %s", v, got, want)
		}
	}
	unconfirmed := []Advisory{{ID: "B", Fixed: "9.0.0", Confirmed: false}}
	if got := checkVersion("3.0.0", unconfirmed, nil, nil).Result; got != verdict.Blocked {
		t.Errorf("an unconfirmed advisory must not fail the node: %s", got)
	}
}

func TestNoKataRuntimeIsNotApplicable(t *testing.T) {
	n := Node{KataVersion: "4.1.0", Containerd: map[string][]byte{"/etc/containerd/config.toml": []byte("version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n")},
		KataConfigs: map[string][]byte{"c.toml": []byte("[hypervisor.qemu]\n")}}
	if f := Check(n, nil)[1]; f.Result != verdict.NotApplicable {
		t.Fatalf("%+v", f)
	}
	n.Containerd["/etc/containerd/conf.d/kata-deploy.toml"] = []byte("not toml [")
	if f := Check(n, nil)[1]; f.Result != verdict.Error || !strings.Contains(f.Reason, "kata-deploy.toml") {
		t.Fatalf("an unparseable configuration is an error naming the file, never a pass: %+v", f)
	}
}

// A node without Kata (a runc-only cluster) answers not applicable, each with why.
func TestNodeWithoutKata(t *testing.T) {
	n := Node{Containerd: map[string][]byte{"/etc/containerd/config.toml": []byte("version = 2\n")}}
	for _, f := range Check(n, advisories(t)) {
		if f.Result != verdict.NotApplicable || !strings.Contains(f.Reason, "no Kata on this node") || f.ID == "" || len(f.Techniques) == 0 {
			t.Errorf("%+v", f)
		}
	}
}

// A drop-in is read like the main file: a misconfigured kata-deploy drop-in is found.
func TestDropInIsChecked(t *testing.T) {
	safe := recorded(t, "safe")
	bad := recorded(t, "misconfigured")
	safe.Containerd["/opt/kata/containerd/config.d/kata-deploy.toml"] = bad.Containerd["/etc/containerd/config.toml"]
	if f := Check(safe, advisories(t))[1]; f.Result != verdict.Reached {
		t.Fatalf("%+v", f)
	}
}

// kernel_params reaches kata-qemu on the misconfigured node (containerd passes
// io.katacontainers.*, the configuration enables it) and not on the safe one.
func TestAnnotationAllowed(t *testing.T) {
	for node, want := range map[string]bool{"safe": false, "misconfigured": true} {
		got, ev, err := AnnotationAllowed(recorded(t, node), "kata-qemu", "kernel_params")
		if err != nil || got != want || len(ev) == 0 {
			t.Errorf("%s: allowed=%v err=%v evidence=%v, want %v", node, got, err, ev, want)
		}
	}
	if _, _, err := AnnotationAllowed(recorded(t, "safe"), "kata-nope", "kernel_params"); err == nil {
		t.Error("an unknown handler is an error, never a verdict")
	}
}

// Issue 11: K03 compared enable_annotations entries as exact strings, though Kata reads
// them as regular expressions: "kernel_.*" or ".+" passed.
func TestK03ReadsEntriesAsRegularExpressions(t *testing.T) {
	for entries, want := range map[string]verdict.Result{
		`["kernel_.*"]`:                       verdict.Reached,
		`[".+"]`:                              verdict.Reached,
		`["virtio_fs_.*"]`:                    verdict.Reached,
		`["default_vcpus", "default_memory"]`: verdict.Blocked,
		`["("]`:                               verdict.Error,
	} {
		cfg := "[hypervisor.qemu]\nenable_annotations = " + entries + "\n"
		files, err := parseKata(map[string][]byte{"/opt/kata/configuration-qemu.toml": []byte(cfg)})
		f := checkAnnotations(files, err)
		if f.Result != want {
			t.Errorf("enable_annotations = %s: %s (%s), want %s", entries, f.Result, f.Reason, want)
		}
	}
}

// A shim-limited advisory (dragonball's virtio fix) fails a node only where that
// shim is configured, and fails it whenever the runtimes could not be read.
func TestShimLimitedAdvisory(t *testing.T) {
	adv := []Advisory{{ID: "D", Fixed: "4.3.0", Confirmed: true, Shims: []string{"dragonball"}}}
	qemuOnly := []runtimeEntry{{name: "kata-qemu"}}
	if got := checkVersion("4.2.0", adv, qemuOnly, nil).Result; got != verdict.Blocked {
		t.Errorf("no dragonball runtime: %s, want blocked", got)
	}
	withDB := []runtimeEntry{{name: "kata-qemu"}, {name: "kata-dragonball"}}
	if got := checkVersion("4.2.0", adv, withDB, nil).Result; got != verdict.Reached {
		t.Errorf("dragonball configured: %s, want reached", got)
	}
	if got := checkVersion("4.2.0", adv, nil, errors.New("unparseable")).Result; got != verdict.Reached {
		t.Errorf("runtimes unknown: %s, want reached (fail closed)", got)
	}
}

// The table is complete enough to judge with: every entry names its checks, every
// check exists, an advisory a configuration can mitigate has a configuration check,
// and every hypervisor annotation an advisory is driven by is one K03 judges.
func TestAdvisoryTableIsJudgeable(t *testing.T) {
	table := advisories(t)
	// The check ids as the checks themselves produce them: K01-K05 here, K06 in
	// annotationcheck.
	var checkIDs []string
	for _, f := range Check(Node{}, nil) {
		checkIDs = append(checkIDs, f.ID)
	}
	checkIDs = append(checkIDs, annotationcheck.Judge("r", false, nil, annotationcheck.Outcome{}).ID)
	if len(table) < 10 {
		t.Fatalf("%d advisories; the table has lost entries", len(table))
	}
	for _, a := range table {
		for _, c := range a.Checks {
			if !slices.Contains(checkIDs, c) {
				t.Errorf("%s: check %s does not exist (have %v)", a.ID, c, checkIDs)
			}
		}
		if a.Mitigation == MitigationConfiguration && !slices.ContainsFunc(a.Checks, func(c string) bool { return c != versionCheckID }) {
			t.Errorf("%s: a configuration-side mitigation needs a check that judges the configuration, not only K01", a.ID)
		}
		for _, ann := range a.Annotations {
			name, ok := strings.CutPrefix(ann, "io.katacontainers.config.hypervisor.")
			if !ok {
				continue
			}
			if _, judged := DangerousAnnotations[name]; !judged {
				t.Errorf("%s names %s, which K03 does not judge", a.ID, ann)
			}
		}
		for _, s := range a.Shims {
			if _, ok := katashims.Lookup(s); !ok {
				t.Errorf("%s: shim %s is not in kata-deploy's table", a.ID, s)
			}
		}
	}
	for _, id := range []string{"GHSA-q49m-57vm-c8cc", "GHSA-mp2j-xm59-qfgw", "GHSA-fmg6-v47x-52wr", "KATA-4.3.0-ANNOTATION-ALLOWLIST", "KATA-4.3.0-DRAGONBALL-VIRTIO"} {
		if !slices.ContainsFunc(table, func(a Advisory) bool { return a.ID == id }) {
			t.Errorf("the table lacks %s", id)
		}
	}
}

// config.KataFloor is what the table says: the newest fix of a confirmed advisory
// that affects every earlier release. Bumping the table without the floor fails here.
func TestFloorFollowsTheTable(t *testing.T) {
	if got := Floor(advisories(t)).String(); got != config.KataFloor {
		t.Fatalf("the advisories put the floor at %s; config.KataFloor is %s", got, config.KataFloor)
	}
	cfg, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Kata.Version; kataversion.MustParse(d).Less(Floor(advisories(t))) {
		t.Fatalf("the default Kata %s is below the floor", d)
	}
}

func TestAdvisoryValidation(t *testing.T) {
	ok := "advisories:\n- {id: X, fixed: 4.3.0, affected: unpublished, confirmed: true, summary: s, source: u, mitigation: upgrade, checks: [K01-kata-advisories]}\n"
	if _, err := DecodeAdvisories([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	for bad, want := range map[string]string{
		strings.Replace(ok, "affected: unpublished, ", "", 1):                           "affected",
		strings.Replace(ok, "mitigation: upgrade", "mitigation: pray", 1):               "mitigation",
		strings.Replace(ok, "[K01-kata-advisories]", "[K03-hypervisor-annotations]", 1): "K01",
		strings.Replace(ok, "fixed: 4.3.0", "fixed: soon", 1):                           "soon",
		strings.Replace(ok, "source: u, ", "", 1):                                       "source",
	} {
		if _, err := DecodeAdvisories([]byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", bad, err, want)
		}
	}
	if !(Advisory{Fixed: "3.31.0", Affected: "< 3.31.0"}).AffectsAllEarlier() || (Advisory{Fixed: "2.0.0", Affected: "< 1.11.5, 2.0.0-rc"}).AffectsAllEarlier() {
		t.Fatal("AffectsAllEarlier misreads a range")
	}
}
