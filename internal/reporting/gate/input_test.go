package gate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const policyHead = "apiVersion: kwc.dev/v1alpha1\nkind: GatePolicy\n"

// Issue 10: a rule whose selector picked no lane passed, because minLanes defaulted
// to 0; a typo in a selector value picked nothing and so passed too.
func TestARuleThatPicksNoLaneFailsUnlessItSaysSo(t *testing.T) {
	p, err := DecodePolicy([]byte(policyHead+"rules: [{name: typo, lanes: {names: [runc-gitlb]}, criteria: [sudo]}]\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, dockerRun()); d.Pass {
		t.Fatalf("a rule that picked no lane passed: %+v", d)
	}
	p, err = DecodePolicy([]byte(policyHead+"rules: [{name: optional, lanes: {names: [nothing]}, criteria: [sudo], minLanes: 0}]\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, dockerRun()); !d.Pass {
		t.Fatalf("minLanes: 0 says no lane is fine: %+v", d)
	}
}

func TestSelectorValuesAreValidated(t *testing.T) {
	for body, want := range map[string]string{
		"rules: [{name: x, lanes: {role: subjects}, criteria: [sudo]}]\n":     `role "subjects"`,
		"rules: [{name: x, lanes: {isolation: VM}, criteria: [sudo]}]\n":      `isolation "VM"`,
		"rules: [{name: x, lanes: {names: [Kata_Qemu]}, criteria: [sudo]}]\n": "not a lane name",
		"rules: [{name: x, lanes: {runtimes: [\" \"]}, criteria: [sudo]}]\n":  "not a runtime name",
		"rules: [{name: x, criteria: [sudo], verdict: passed}]\n":             `verdict "passed"`,
		"rules: [{name: x, criteria: [sudo], minLanes: -1}]\n":                "minLanes -1",
		"rules: [{name: x, criteria: [sudo], reasonContains: y}]\n":           "reasonContains goes with verdict: fail",
	} {
		if _, err := DecodePolicy([]byte(policyHead+body), "t"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// The shipped policies still decode under the stricter rules.
func TestShippedPoliciesDecode(t *testing.T) {
	files, _ := filepath.Glob("../../../fixtures/policies/*.yaml")
	if len(files) == 0 {
		t.Fatal("no policies found")
	}
	for _, f := range files {
		if _, err := LoadPolicy(f); err != nil {
			t.Error(err)
		}
	}
}

// FuzzDecodePolicy: no input panics, and an accepted policy can be evaluated.
func FuzzDecodePolicy(f *testing.F) {
	files, _ := filepath.Glob("../../../fixtures/policies/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(policyHead + "rules: [{name: x, criteria: [sudo], minLanes: 0}]\n"))
	f.Add([]byte(policyHead + "rules: [{name: x, lanes: {role: control}, criteria: [escape], verdict: fail, reasonContains: kernel}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePolicy(b, "fuzz")
		if err != nil {
			return
		}
		for _, r := range p.Rules {
			if r.MinLanes == nil {
				t.Fatal("an accepted rule has no minLanes after decoding")
			}
		}
		_ = Evaluate(p, dockerRun())
	})
}
