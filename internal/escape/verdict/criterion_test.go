package verdict

import (
	"testing"

	"kwc.dev/kwc/internal/config"
)

func ck(tool string, v config.Verdict) Check { return Check{ID: tool + "-x", Tool: tool, Verdict: v} }

func TestByToolAnyPassesWhenOneToolPassesEveryCase(t *testing.T) {
	p := config.ToolPolicy{Tools: []string{"docker", "buildah", "podman"}, Require: "any"}
	c := ByTool([]Check{ck("docker", Fail), ck("buildah", Pass), ck("buildah", Pass), ck("podman", Pass), ck("podman", Fail)}, p)
	if c.Verdict != Pass {
		t.Fatalf("verdict %s, want pass: %+v", c.Verdict, c)
	}
	if c.Tools["docker"] != Fail || c.Tools["buildah"] != Pass || c.Tools["podman"] != Fail {
		t.Fatalf("per-tool verdicts wrong: %v", c.Tools)
	}
	if c.Reason == "" {
		t.Fatal("a pass despite failing tools must say which failed")
	}
}

func TestByToolAllFailsWhenOneToolFails(t *testing.T) {
	p := config.ToolPolicy{Tools: []string{"docker", "podman"}, Require: "all"}
	if c := ByTool([]Check{ck("docker", Pass), ck("podman", Fail)}, p); c.Verdict != Fail {
		t.Fatalf("verdict %s, want fail", c.Verdict)
	}
	if c := ByTool([]Check{ck("docker", Pass), ck("podman", Pass)}, p); c.Verdict != Pass {
		t.Fatalf("verdict %s, want pass", c.Verdict)
	}
}

func TestByToolNoPassWithAnUnjudgedToolIsInconclusive(t *testing.T) {
	p := config.ToolPolicy{Tools: []string{"docker", "podman"}, Require: "any"}
	c := ByTool([]Check{ck("docker", Fail), ck("podman", Inconclusive)}, p)
	if c.Verdict != Inconclusive {
		t.Fatalf("verdict %s, want inconclusive", c.Verdict)
	}
	if c := ByTool([]Check{ck("docker", Fail), ck("podman", Fail)}, p); c.Verdict != Fail {
		t.Fatalf("verdict %s, want fail", c.Verdict)
	}
}

func TestByToolUnrunToolIsSkippedNotPassed(t *testing.T) {
	p := config.ToolPolicy{Tools: []string{"docker", "podman"}, Require: "all"}
	c := ByTool([]Check{ck("docker", Pass)}, p)
	if c.Tools["podman"] != Skipped || c.Verdict != Inconclusive {
		t.Fatalf("a required tool that never ran cannot pass: %v %s", c.Tools, c.Verdict)
	}
}

func TestAllChecks(t *testing.T) {
	for _, tc := range []struct {
		in   []config.Verdict
		want config.Verdict
	}{
		{[]config.Verdict{Pass, Pass}, Pass},
		{[]config.Verdict{Pass, Skipped}, Pass},
		{[]config.Verdict{Pass, Fail, Inconclusive}, Fail},
		{[]config.Verdict{Pass, Inconclusive}, Inconclusive},
		{[]config.Verdict{Skipped}, Skipped},
		{nil, Inconclusive},
	} {
		var checks []Check
		for _, v := range tc.in {
			checks = append(checks, Check{ID: "c", Verdict: v})
		}
		if got := AllChecks(checks).Verdict; got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestMeets(t *testing.T) {
	if !Meets(Fail, "", false) || !Meets(Pass, "", false) || Meets(Inconclusive, "", false) {
		t.Fatal("an unexpected criterion must be conclusive, either way")
	}
	if Meets(Fail, Pass, true) || !Meets(Pass, Pass, true) {
		t.Fatal("an expected criterion must match")
	}
}
