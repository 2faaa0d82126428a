package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const head = "apiVersion: kwc.dev/v1alpha1\nkind: Config\n"

// Issue 10: "lanes: null" kept the default lanes. An explicit empty list is no lanes,
// and Validate says so.
func TestNullOrEmptyLanesAreNoLanes(t *testing.T) {
	for _, body := range []string{"lanes: null\n", "lanes: []\n", "lanes:\n"} {
		_, err := Load(write(t, head+body), Overrides{})
		if err == nil || !strings.Contains(err.Error(), "lanes: none configured") {
			t.Errorf("%q: %v, want lanes: none configured", body, err)
		}
	}
}

// Issue 10: an interval key nothing reads was accepted when it had a slash.
func TestUnknownIntervalKeysAreRejected(t *testing.T) {
	for key, want := range map[string]string{
		"sudo/typo":        `sudo reads no interval "typo"`,
		"nosuch/exec":      `unknown part "nosuch"`,
		"exec":             "keys are spec/key",
		"default/a/b":      "keys are spec/key",
		"escape/probe/x":   "keys are spec/key",
		"kind/kata-redy":   `kind reads no interval "kata-redy"`,
		"cluster/uninstal": "cluster reads no interval",
	} {
		_, err := Load(write(t, head+"intervals:\n  "+key+": 1m\n"), Overrides{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("intervals[%s]: %v, want %q", key, err, want)
		}
	}
	// A default key set for one part is read by that part.
	if _, err := Load(write(t, head+"intervals:\n  sudo/exec: 30s\n  cluster/uninstall: 1m\n"), Overrides{}); err != nil {
		t.Fatal(err)
	}
}

// Every Interval(spec, key) the code asks for is a key Validate accepts and the
// defaults set, so no interval is fixed in code or panics at run time.
func TestEveryIntervalTheCodeReadsIsKnownAndDefaulted(t *testing.T) {
	c, err := Load("", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`Interval\("([a-z-]+)", "([a-z-]+)"\)`)
	root := filepath.Join("..", "..")
	seen := 0
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.Contains(p, ".cache") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			seen++
			if err := checkIntervalKey(m[1] + "/" + m[2]); err != nil {
				t.Errorf("%s reads interval %s/%s: %v", p, m[1], m[2], err)
				continue
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s reads interval %s/%s, which the defaults do not set: %v", p, m[1], m[2], r)
					}
				}()
				c.Interval(m[1], m[2])
			}()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Fatalf("found only %d Interval calls; the pattern no longer matches the code", seen)
	}
}

// The probes' own cap comes from the config (issue 10: it was validated, then the
// agent used 15 s whatever it said).
func TestProbeTimeoutIsRead(t *testing.T) {
	c, err := Load(write(t, head+"probes:\n  timeout: 7s\n"), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Probes.Timeout.Seconds() != 7 {
		t.Fatalf("probes.timeout = %s", c.Probes.Timeout)
	}
}

// FuzzLoad: no input panics or hangs, and an accepted config means what it says: the
// resolved config (what the report records as run.config) encodes and decodes on its
// own, without the defaults merged again, to the same config and still validates.
func FuzzLoad(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte(head + "lanes: null\n"))
	f.Add([]byte(head + "intervals:\n  sudo/exec: 30s\n"))
	f.Add([]byte(head + "target: docker\nlanes:\n  - {name: a, role: subject, runtime: default, shape: gitlab}\n"))
	f.Add([]byte(head + "probes: {timeout: -1s}\n"))
	f.Add([]byte(head + "kata: {version: 4.3.0, shims: [acrn]}\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		p := filepath.Join(t.TempDir(), "kwc.yaml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, Overrides{})
		if err != nil {
			return
		}
		enc, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("an accepted config does not encode: %v", err)
		}
		again, err := Decode(enc, "re-encoded")
		if err != nil {
			t.Fatalf("an accepted config, encoded, does not decode: %v\n%s", err, enc)
		}
		again.Default()
		if err := again.Validate(); err != nil {
			t.Fatalf("an accepted config, encoded, no longer validates: %v\n%s", err, enc)
		}
		enc2, _ := yaml.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("an accepted config changes meaning when encoded and decoded again:\n%s\n---\n%s", enc, enc2)
		}
	})
}

// Issue 14: asking for ACRN says plainly that Kata removed it and why no secure Kata
// can provide it.
func TestACRNSaysItWasRemoved(t *testing.T) {
	_, err := Load(write(t, head+"kata:\n  shims: [acrn]\n"), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "removed ACRN support in 3.10.0") || !strings.Contains(err.Error(), "cluster.runtimeClasses") {
		t.Fatalf("kata.shims: [acrn]: %v", err)
	}
}

// Issue 12: where the engine registers runsc, the gVisor lanes join the run, sandbox-
// isolated with tmpfs image stores; where it does not, they do not (and the suite says
// how to add them).
func TestSandboxLanesWhereTheEngineHasRunsc(t *testing.T) {
	c, err := Load("", Overrides{Target: "docker"})
	if err != nil {
		t.Fatal(err)
	}
	with, err := c.EffectiveLanes([]string{"default", "runsc"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range with {
		if l.Runtime == "runsc" {
			names = append(names, l.Name)
			if l.Isolation != IsolationSandbox || l.Storage != StorageTmpfs || l.Role != RoleSubject {
				t.Errorf("%s: isolation %s storage %s role %s", l.Name, l.Isolation, l.Storage, l.Role)
			}
			if l.Expect["sudo"] != VerdictPass || l.Expect["escape"] != VerdictPass {
				t.Errorf("%s must be expected to give sudo and block escape: %v", l.Name, l.Expect)
			}
		}
	}
	if strings.Join(names, ",") != "gvisor-gitlab,gvisor-privileged" {
		t.Fatalf("gVisor lanes: %v", names)
	}
	without, err := c.EffectiveLanes([]string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range without {
		if l.Runtime == "runsc" {
			t.Fatalf("a gVisor lane without runsc: %s", l.Name)
		}
	}
	// A sandbox control makes no sense: controls share the node's kernel.
	_, err = Load(write(t, head+"lanes:\n  - {name: x, role: control, control: C1, runtime: runsc, isolation: sandbox, privileged: true}\n"), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "isolation sandbox on a control lane") {
		t.Fatalf("a sandbox control lane: %v", err)
	}
}

// Found by FuzzLoad: "intervals: null" (in any letter case) dropped every default
// interval and was accepted, so the run would have panicked half way; and a file
// without kwc's apiVersion and kind was merged into the defaults.
func TestNullIntervalsAndForeignFilesAreRejected(t *testing.T) {
	for body, want := range map[string]string{
		head + "intervals: null\n": "intervals: no value for",
		head + "intervAls: {}\n":   "",
		"intervAls:\n":             "want apiVersion kwc.dev/v1alpha1",
		"lanes: []\n":              "want apiVersion kwc.dev/v1alpha1",
	} {
		_, err := Load(write(t, body), Overrides{})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v (an empty map changes nothing)", body, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}
