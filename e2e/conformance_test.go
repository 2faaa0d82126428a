//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/e2e/specs"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/target"
)

// Lanes only observe and are independent of each other: the escape verdicts, which
// rest on what the controls proved, are judged after every lane has run
// (ReportAfterSuite), so lanes may run in any order and in parallel processes. Each
// lane is Ordered: its specs share its workspace.
var _ = Describe("kwc conformance", func() {
	for _, lane := range suite.Lanes {
		for _, c := range lane.Criteria {
			if !framework.Selected(framework.LaneLabel(lane.Name), c) {
				suite.Recorder.SetFiltered(lane.Name, c)
			}
		}
		Describe("lane "+lane.Name+" ("+string(lane.Role)+")", framework.Label(framework.LaneLabel(lane.Name)), Ordered, func() {
			var ws target.Workspace
			var tools *specs.Toolbox
			failed := false
			var specStart time.Time
			BeforeEach(func() { specStart = time.Now() })
			AfterEach(func() {
				failed = failed || CurrentSpecReport().Failed()
				var crit []string
				for _, l := range CurrentSpecReport().Labels() {
					if !strings.HasPrefix(l, "lane:") {
						crit = append(crit, l)
					}
				}
				suite.Recorder.AddPhase(lane.Name+": "+strings.Join(crit, " "), specStart, time.Now())
			})

			BeforeAll(func(ctx SpecContext) {
				suite.Logf("lane %s: starting its workspace (runtime %s)", lane.Name, lane.Runtime)
				done := suite.Phase(lane.Name + ": start workspace")
				w, err := suite.Target.StartWorkspace(ctx, lane)
				done()
				if err != nil {
					suite.WriteArtifact(filepath.Join(lane.Name, "workspace-start-error.txt"), err.Error()+"\n")
					suite.Recorder.AddLaneError(lane.Name, "the workspace did not start: "+strings.SplitN(err.Error(), "\n", 2)[0])
				}
				Expect(err).NotTo(HaveOccurred(), "starting the workspace of lane %s", lane.Name)
				ws = w
				suite.Recorder.SetWorkspace(lane.Name, w.Name())
				// Registered first, so it runs last: the dump below sees a live workspace.
				DeferCleanup(func(ctx context.Context) {
					if suite.Config.Keep {
						suite.Logf("lane %s: kept workspace %s; get in with: %s", lane.Name, w.Name(), w.EnterHint())
						return
					}
					Expect(w.Stop(ctx)).To(Succeed())
				})
				DeferCleanup(func(ctx context.Context) {
					if !failed && !CurrentSpecReport().Failed() {
						return
					}
					dumpWorkspace(ctx, lane, w)
				})
				tools = specs.NewToolbox(w, suite.State.Base.Ref, suite.State.Base.Archive, fixtures, specs.Timeouts{
					Exec:    suite.Config.Interval("default", "exec"),
					Fixture: suite.Config.Interval("build", "fixture"),
				})
			}, NodeTimeout(suite.Config.Interval("default", "workspace-start")))

			if lane.Measures(framework.LabelSudo) {
				specs.SudoSpec(func() specs.SudoSpecInput {
					return specs.SudoSpecInput{Suite: suite, Lane: lane, Workspace: ws}
				})
			}
			if lane.Measures(framework.LabelBuild) {
				specs.BuildSpec(func() specs.BuildSpecInput {
					return specs.BuildSpecInput{Suite: suite, Lane: lane, Tools: tools, Fixtures: fixtures, Base: suite.State.Base}
				})
			}
			if lane.Measures(framework.LabelRun) {
				specs.RunSpec(func() specs.RunSpecInput {
					return specs.RunSpecInput{Suite: suite, Lane: lane, Tools: tools, Image: fixtureNamed("single-stage")}
				})
			}
			if lane.Measures(framework.LabelEscape) {
				specs.EscapeSpec(func() specs.EscapeSpecInput {
					in := specs.EscapeSpecInput{Suite: suite, Lane: lane, Workspace: ws, Tools: tools,
						ProbeBin: suite.State.ProbeBin, NonKernel: nonKernel()}
					if ws != nil {
						in.Node, in.NodeReference, in.NodeError = suite.NodeOf(ws)
						in.NodeName = suite.NodeName(ws)
					}
					return in
				})
			}
		})
	}
})

func fixtureNamed(name string) dockerfiles.Fixture {
	for _, f := range fixtures {
		if f.Name == name {
			return f
		}
	}
	Fail("no build fixture named " + name)
	return dockerfiles.Fixture{}
}

// dumpWorkspace keeps what explains a failed lane without a re-run: the workspace's
// own log, the nested daemon's log, and on Kubernetes the pod and its namespace's
// events.
func dumpWorkspace(ctx context.Context, lane config.Lane, w target.Workspace) {
	if logs, err := w.Logs(ctx); err == nil {
		suite.WriteArtifact(filepath.Join(lane.Name, "workspace.log"), logs)
	}
	if d, ok := w.(interface{ Describe(context.Context) string }); ok {
		suite.WriteArtifact(filepath.Join(lane.Name, "pod.txt"), d.Describe(ctx))
	}
	sh := framework.Shell{WS: w}
	// Redacted on the way out: in a host-PID lane, ps shows the canary's command line.
	if r, err := sh.Sudo(ctx, suite.Config.Interval("default", "exec"), "cat /tmp/kwc/dockerd.log 2>/dev/null; ps -ef"); err == nil {
		suite.WriteArtifact(filepath.Join(lane.Name, "workspace-state.txt"), framework.Evidence(r))
	}
}
