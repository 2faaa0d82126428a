package kataconfig

import (
	"io/fs"
	"strings"
	"testing"

	"kwc.dev/kwc/fixtures"
	"kwc.dev/kwc/internal/verdict"
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
		if got := checkVersion(v, adv).Result; got != want {
			t.Errorf("Kata %q: %s, want %s", v, got, want)
		}
	}
	unconfirmed := []Advisory{{ID: "B", Fixed: "9.0.0", Confirmed: false}}
	if got := checkVersion("3.0.0", unconfirmed).Result; got != verdict.Blocked {
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
