//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/e2e/specs"

	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/escape/proberun"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/images/baseimage"
	"kwc.dev/kwc/internal/images/engineimage"
	"kwc.dev/kwc/internal/images/imagepush"
	"kwc.dev/kwc/internal/images/localregistry"
	"kwc.dev/kwc/internal/kube/apichecks"
	"kwc.dev/kwc/internal/kube/kubeagent"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/reporting/report"
	"kwc.dev/kwc/internal/target"
)

var (
	flags framework.Flags
	// suite is the run: set in TestE2E before the tree is built (lanes shape the
	// tree); what specs read lives in suite.State, shared by every process.
	suite    *framework.Suite
	fixtures []dockerfiles.Fixture
	// planted holds this run's canaries on the harness's host (docker target,
	// process 1 only, which removes them after every process is done).
	planted *nodeagent.Planted
)

func init() {
	flag.StringVar(&flags.Config, "kwc.config", "", "kwc.yaml to decode on top of the embedded defaults")
	flag.StringVar(&flags.Target, "kwc.target", "", "where workspaces run: docker, kind or cluster (overrides the config)")
	flag.StringVar(&flags.ReportsDir, "kwc.reports-dir", "", "where reports/<timestamp>-<id>/ goes (default: reports at the repository root)")
	flag.BoolVar(&flags.Keep, "kwc.keep", false, "keep workspaces after the run and print how to get in")
	flag.StringVar(&flags.Reuse, "kwc.reuse", "", "run against this kept kind cluster (from an earlier --kwc.keep run) instead of creating one")
	flag.BoolVar(&flags.DryRun, "kwc.dry-run", false, "print the plan (cluster config, chart and values, lanes, images, preflight) and create nothing")
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	if flags.ReportsDir == "" {
		flags.ReportsDir = "../reports"
	}
	sc, _ := GinkgoConfiguration()
	flags.Parallel = framework.ParallelFrom(sc.ParallelProcess, sc.ParallelTotal)
	s, err := framework.Setup(context.Background(), flags, os.Stdout)
	suite = s
	if errors.Is(err, framework.ErrDryRun) {
		return
	}
	if err != nil {
		s.Recorder.SetRunError(err.Error())
		if _, ferr := s.Finish(context.Background()); ferr != nil {
			t.Logf("kwc: %v", ferr)
		}
		t.Fatalf("kwc: %v", err)
	}
	fixtures, err = dockerfiles.Fixtures()
	if err != nil {
		t.Fatalf("kwc: reading the build fixtures: %v", err)
	}
	for _, l := range s.Lanes {
		framework.RegisterLane(l.Name)
	}
	framework.FreezeLabels()
	suiteConfig, reporterConfig := GinkgoConfiguration()
	reporterConfig.JUnitReport = filepath.Join(s.Dir, "ginkgo-junit.xml")
	reporterConfig.JSONReport = filepath.Join(s.Dir, "ginkgo-report.json")
	if s.Parallel.Process <= 1 {
		s.Logf("run %s: target %s, lanes %d, report folder %s, %d parallel processes", s.RunID, s.Config.Target, len(s.Lanes), s.Dir, s.Parallel.Total)
	}
	RunSpecs(t, "kwc conformance", suiteConfig, reporterConfig)
}

// Process 1 sets the run up once (images, registry, probe, canaries, the node
// references); every process then adopts the state it made.
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	st := setUp(ctx)
	b, err := json.Marshal(st)
	Expect(err).NotTo(HaveOccurred(), "encoding the run's state for the other processes")
	return b
}, func(ctx SpecContext, b []byte) {
	var st framework.RunState
	Expect(json.Unmarshal(b, &st)).To(Succeed(), "decoding the run's state from process 1")
	Expect(suite.Adopt(ctx, st)).To(Succeed(), "joining the run process 1 set up")
}, NodeTimeout(cfgTimeout("build", "image")+cfgTimeout("kind", "setup")))

// setUp makes the run's shared state: what process 1 does before any lane.
func setUp(ctx context.Context) framework.RunState {
	defer suite.Phase("setup: images, registry, probe, canaries")()
	st := framework.RunState{Dir: suite.Dir, Start: suite.Start(), NodeRefs: map[string][]verdict.ProbeVerdict{}}
	cfg := suite.Config
	cli := suite.Docker.Client()
	_, err := engineimage.EnsureDebianBase(ctx, cli, engineimage.DebianBase{
		Ref: cfg.Images.WorkspaceBase, Suite: cfg.Images.DebianSuite, Mirror: cfg.Images.DebianMirror,
		CacheDir: cachedir.Path(),
	}, suite.Logf)
	setupStep(err, "making the workspace's Debian base")
	id, err := engineimage.BuildImage(ctx, cli, engineimage.Build{
		Ref: cfg.Images.Workspace, Context: dockerfiles.Workspace(),
		Args:        map[string]string{"BASE": cfg.Images.WorkspaceBase},
		HostNetwork: true, LogPath: filepath.Join(suite.Dir, "artifacts", "workspace-image-build.log"),
	}, suite.Logf)
	setupStep(err, "building the workspace image")
	suite.Recorder.SetEnv(map[string]string{"image.workspace": cfg.Images.Workspace + "@" + id})

	suite.Registry, err = localregistry.Start()
	Expect(err).NotTo(HaveOccurred())
	st.Registry = suite.Registry.Host()
	st.Base, err = specs.PrepareFixtureBase(ctx, suite.Registry, baseimage.DefaultBusybox)
	setupStep(err, "making the fixtures' base image")
	suite.Recorder.SetEnv(map[string]string{"image.fixtureBase": st.Base.Ref + "@" + st.Base.Digest, "registry": suite.Registry.Host()})
	suite.Logf("fixture base %s@%s served by the in-process registry", st.Base.Ref, st.Base.Digest)

	var probePath string
	st.ProbeBin, probePath, err = proberun.Build(ctx, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred(), "building kwc-probe")
	switch {
	case suite.Kind != nil:
		setUpKind(ctx, &st)
		return st
	case suite.Cluster != nil:
		setUpCluster(ctx, &st)
		return st
	}
	// Canaries go down before any workspace starts: a privileged container sees the
	// host's device nodes (the loop canary) as they were when it was created.
	engineID, sockets, err := suite.Docker.EngineIdentity(ctx)
	Expect(err).NotTo(HaveOccurred())
	var agentErr error
	planted, agentErr = nodeagent.Plant(nodeagent.Options{RunID: suite.RunID, Sockets: sockets, EngineID: engineID, Folders: nodeagent.HostFolders,
		ProbeTimeout: suite.Config.Probes.Timeout.Duration, Discovery: suite.Config.Probes.Discovery.Bounds(), Logf: suite.Logf})
	if agentErr != nil {
		suite.Logf("escape probes will be inconclusive: %v", agentErr)
		st.AgentError = agentErr.Error()
		return st
	}
	held := nodeagent.HeldFrom(planted)
	st.Host, st.Secrets = &held, []string{planted.Token()}
	suite.Recorder.SetEnv(map[string]string{"canaries": strings.Join(planted.Inventory(), "; "), "node.bootID": planted.Facts()["bootID"], "node.kernel": planted.Facts()["kernel"], "node.cgroupMode": planted.Facts()["cgroupMode"]})
	res, err := proberun.OnNode(ctx, probePath, planted.Spec())
	Expect(err).NotTo(HaveOccurred(), "running kwc-probe on the node as the reference")
	st.NodeRefs[""] = recordReference("", planted, res)
	return st
}

// recordReference judges the probe set's run on a node itself and records which
// probes it did not reach there.
func recordReference(node string, c nodeagent.Canaries, res probespec.Result) []verdict.ProbeVerdict {
	ref := verdict.JudgeAll(res, c.Facts(), verdict.Secret{Marker: c.Spec().Marker, Token: c.Token()})
	var missed []string
	for _, v := range ref {
		if v.Result != verdict.Reached && v.Result != verdict.NotApplicable {
			missed = append(missed, v.ID+" "+string(v.Result))
		}
	}
	key := "node.probeReference"
	if node != "" {
		key = "node." + node + ".probeReference"
	}
	suite.Recorder.SetEnv(map[string]string{key: fmt.Sprintf("%d probes, not reached on the node: %v", len(ref), missed)})
	return ref
}

// nonKernel is the escape spec's cluster questions on the Kubernetes targets.
func nonKernel() func(context.Context, target.Workspace) []verdict.Finding {
	if suite.Cluster == nil {
		return nil
	}
	version := suite.KataVersion
	if suite.Config.Target == config.TargetKind && suite.Config.KindCluster.Kata == config.KindKataInstall {
		version = suite.Config.Kata.Version
	}
	return func(ctx context.Context, ws target.Workspace) []verdict.Finding {
		var apiErr error
		if e := suite.State.APIControlError; e != "" {
			apiErr = errors.New(e)
		}
		return specs.NonKernelFindings(ctx, specs.NonKernelInput{Target: suite.Cluster.Target, Agent: suite.Agent(ws),
			KataVersion: version, Timeout: config.Duration{Duration: suite.Config.Interval("escape", "probe")},
			APIControls: suite.State.APIControls, APIControlError: apiErr}, ws)
	}
}

// setupStep fails the setup with what it was doing, and records why the run did not
// complete in the report.
func setupStep(err error, doing string) {
	GinkgoHelper()
	if err != nil {
		suite.Recorder.SetRunError(doing + ": " + err.Error())
	}
	Expect(err).NotTo(HaveOccurred(), doing)
}

// setUpKind puts the run's images into the kind nodes and installs Kata (when
// kindCluster.kata is install), then starts the node agents.
func setUpKind(ctx context.Context, st *framework.RunState) {
	cfg := suite.Config
	cli := suite.Docker.Client()
	// The image compressed once and cached (as for a push) streams into the nodes
	// faster than the engine's uncompressed save.
	done := suite.Phase("kind: workspace image into the nodes")
	img, err := imagepush.FromEngineCached(ctx, cli, cfg.Images.Workspace, cachedir.Path())
	setupStep(err, "reading the workspace image from the engine")
	err = suite.Kind.Cluster.LoadImage(img, cfg.Images.Workspace)
	done()
	setupStep(err, "loading the workspace image into the kind nodes")
	suite.Logf("loaded %s into the kind nodes", cfg.Images.Workspace)
	if cfg.KindCluster.Kata == config.KindKataInstall {
		done := suite.Phase("kind: kata-deploy install and readiness")
		err = suite.Kind.InstallKata(ctx, cfg.Interval("kind", "kata-ready"))
		done()
		setupStep(err, "installing Kata")
	}
	ref := "127.0.0.1/kwc/node-agent:" + suite.RunID
	setupStep(suite.Kind.Cluster.LoadImage(agentImage(ctx), ref), "loading the node agent image")
	startAgents(ctx, ref, st)
}

// setUpCluster pushes the run's images to the registry the user named, then starts
// the node agents.
func setUpCluster(ctx context.Context, st *framework.RunState) {
	cfg := suite.Config
	insecure := imagepush.Insecure(cfg.Cluster.Registry, cfg.Cluster.InsecureRegistry)
	done := suite.Phase("cluster: push images")
	wsImage, err := imagepush.FromEngineCached(ctx, suite.Docker.Client(), cfg.Images.Workspace, cachedir.Path())
	setupStep(err, "reading the workspace image from the engine")
	pinned, err := imagepush.Push(ctx, wsImage, cfg.Cluster.Registry+"/kwc/workspace:"+suite.RunID, insecure)
	setupStep(err, "pushing the workspace image")
	agentRef, err := imagepush.Push(ctx, agentImage(ctx), cfg.Cluster.Registry+"/kwc/node-agent:"+suite.RunID, insecure)
	setupStep(err, "pushing the node agent image")
	done()
	suite.Logf("pushed %s and %s", pinned, agentRef)
	suite.Recorder.SetEnv(map[string]string{"image.workspace.pushed": pinned, "image.nodeAgent": agentRef})
	startAgents(ctx, agentRef, st)
}

// agentImage is the node agent's image: busybox-static and kwc-agent, made in Go.
func agentImage(ctx context.Context) v1.Image {
	bin, _, err := proberun.BuildCommand(ctx, GinkgoT().TempDir(), "kwc-agent")
	setupStep(err, "building kwc-agent")
	bb, err := baseimage.Busybox(baseimage.DefaultBusybox)
	setupStep(err, "making the node agent's base")
	img, err := kubeagent.Image(bin, bb)
	setupStep(err, "making the node agent image")
	return img
}

// startAgents runs the node agent on every node and the probe set in each agent, as
// that node's reference. Without agents the escape criterion is inconclusive, and
// says why.
func startAgents(ctx context.Context, image string, st *framework.RunState) {
	done := suite.Phase("cluster: node agents, probe reference, API checks' control")
	defer done()
	var err error
	st.APIControls, err = apichecks.Control(ctx, suite.Cluster.Target.RestConfig(), suite.RunID)
	if err != nil {
		st.APIControlError = err.Error()
		suite.Logf("API checks will be inconclusive: %v", err)
	} else {
		suite.Recorder.SetEnv(map[string]string{"cluster.apiControl": fmt.Sprint(st.APIControls)})
	}
	agents, err := suite.Cluster.StartAgent(ctx, image, suite.Config.Interval("cluster", "agent-start"))
	if err != nil {
		st.AgentError = err.Error()
		suite.Logf("escape probes will be inconclusive: %v", err)
		return
	}
	for node, a := range agents {
		st.Secrets = append(st.Secrets, a.Token())
		suite.Recorder.SetEnv(map[string]string{"node." + node + ".canaries": strings.Join(a.Inventory(), "; "), "node." + node + ".kernel": a.Facts()["kernel"], "node." + node + ".bootID": a.Facts()["bootID"]})
		Expect(proberun.Install(ctx, a.Workspace(), st.ProbeBin)).To(Succeed(), "copying kwc-probe into the node agent on %s", node)
		res, ev, err := proberun.RunDirect(ctx, a.Workspace(), a.Spec(), suite.Config.Interval("escape", "probe"))
		Expect(err).NotTo(HaveOccurred(), "running kwc-probe in the node agent on %s as the reference:\n%s", node, ev)
		st.NodeRefs[node] = recordReference(node, a, res)
	}
}

// Every process hands process 1 what it recorded; process 1 removes the canaries
// once all of them are done.
var _ = SynchronizedAfterSuite(func() {
	Expect(suite.WritePart()).To(Succeed(), "saving this process's results for process 1")
}, func() {
	if planted != nil {
		Expect(planted.Remove()).To(Succeed(), "removing the canaries from the node (kwc cleanup --run %s removes leftovers)", suite.RunID)
	}
})

var _ = ReportAfterSuite("kwc conformance report", func(r Report) {
	if !r.SuiteSucceeded && len(r.SpecialSuiteFailureReasons) > 0 {
		suite.Recorder.SetRunError(r.SpecialSuiteFailureReasons[0])
	}
	// The judge: every escape verdict from every lane's observation (from every
	// process), now that all lanes have run.
	if err := suite.MergeParts(); err != nil {
		suite.Recorder.SetRunError(err.Error())
	}
	missed := suite.JudgeEscape(suite.Lanes)
	suite.Failed = !r.SuiteSucceeded || len(missed) > 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := suite.Finish(ctx)
	report.Matrix(os.Stdout, c)
	Expect(err).NotTo(HaveOccurred())
	Expect(missed).To(BeEmpty(), "escape verdicts judged after every lane")
})

// cfgTimeout reads an interval at tree-construction time, when the config is loaded.
func cfgTimeout(spec, key string) time.Duration {
	if suite == nil || suite.Config == nil {
		return time.Hour
	}
	return suite.Config.Interval(spec, key)
}
