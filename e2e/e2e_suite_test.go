//go:build e2e

package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"kwc.dev/kwc/internal/apichecks"
	"kwc.dev/kwc/internal/baseimage"
	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/clusterrun"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/engineimage"
	"kwc.dev/kwc/internal/imagepush"
	"kwc.dev/kwc/internal/kubeagent"
	"kwc.dev/kwc/internal/localregistry"
	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/proberun"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/report"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/target/kubetarget"
	"kwc.dev/kwc/internal/verdict"
)

var (
	flags framework.Flags
	// planted holds this run's canaries on the harness's host (docker target); agents
	// hold them on every node (Kubernetes targets); agentErr says why there are none.
	planted  *nodeagent.Planted
	agents   clusterrun.Agents
	agentErr error
	probeBin []byte
	// nodeRefs is the probe set run on each node itself (by node name; "" on the docker
	// target): the reference that reaches all.
	nodeRefs = map[string][]verdict.ProbeVerdict{}
	// apiControls are the API checks' results in this run's misconfigured namespace.
	apiControls   map[string]verdict.Result
	apiControlErr error
	// suite is set in TestE2E before the tree is built: lanes shape the tree.
	suite    *framework.Suite
	fixtures []dockerfiles.Fixture
	base     specs.FixtureBase
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
	s.Logf("run %s: target %s, lanes %d, report folder %s", s.RunID, s.Config.Target, len(s.Lanes), s.Dir)
	RunSpecs(t, "kwc conformance", suiteConfig, reporterConfig)
}

var _ = BeforeSuite(func(ctx SpecContext) {
	defer suite.Phase("setup: images, registry, probe, canaries")()
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
	base, err = specs.PrepareFixtureBase(ctx, suite.Registry, baseimage.DefaultBusybox)
	setupStep(err, "making the fixtures' base image")
	suite.Recorder.SetEnv(map[string]string{"image.fixtureBase": base.Ref + "@" + base.Digest, "registry": suite.Registry.Host()})
	suite.Logf("fixture base %s@%s served by the in-process registry", base.Ref, base.Digest)

	var probePath string
	probeBin, probePath, err = proberun.Build(ctx, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred(), "building kwc-probe")
	switch {
	case suite.Kind != nil:
		setUpKind(ctx)
		return
	case suite.Cluster != nil:
		setUpCluster(ctx)
		return
	}
	// Canaries go down before any workspace starts: a privileged container sees the
	// host's device nodes (the loop canary) as they were when it was created.
	engineID, sockets, err := suite.Docker.EngineIdentity(ctx)
	Expect(err).NotTo(HaveOccurred())
	planted, agentErr = nodeagent.Plant(nodeagent.Options{RunID: suite.RunID, Sockets: sockets, EngineID: engineID, Folders: nodeagent.HostFolders,
		ProbeTimeout: suite.Config.Probes.Timeout.Duration, Discovery: suite.Config.Probes.Discovery.Bounds(), Logf: suite.Logf})
	if agentErr != nil {
		suite.Logf("escape probes will be inconclusive: %v", agentErr)
		return
	}
	suite.AddSecret(planted.Token())
	suite.Recorder.SetEnv(map[string]string{"canaries": strings.Join(planted.Inventory(), "; "), "node.bootID": planted.Facts()["bootID"], "node.kernel": planted.Facts()["kernel"], "node.cgroupMode": planted.Facts()["cgroupMode"]})
	res, err := proberun.OnNode(ctx, probePath, planted.Spec())
	Expect(err).NotTo(HaveOccurred(), "running kwc-probe on the node as the reference")
	recordReference("", planted, res)
}, NodeTimeout(cfgTimeout("build", "image")+cfgTimeout("kind", "setup")))

// recordReference judges the probe set's run on a node itself and records which
// probes it did not reach there.
func recordReference(node string, c nodeagent.Canaries, res probespec.Result) {
	ref := verdict.JudgeAll(res, c.Facts(), verdict.Secret{Marker: c.Spec().Marker, Token: c.Token()})
	nodeRefs[node] = ref
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
}

// nodeOf returns the node side of a workspace and the probe reference on that node.
func nodeOf(ws target.Workspace) (specs.Node, []verdict.ProbeVerdict, error) {
	if planted != nil {
		return planted, nodeRefs[""], nil
	}
	if agents == nil {
		return nil, nil, agentErr
	}
	n := kubetarget.NodeOf(ws)
	a, ok := agents[n]
	if !ok {
		return nil, nil, fmt.Errorf("no node agent holds canaries on node %q", n)
	}
	return a, nodeRefs[n], nil
}

// nodeName is the node a workspace runs on: "" on the docker target, where the
// harness's host is the one node.
func nodeName(ws target.Workspace) string {
	if planted != nil || agents == nil {
		return ""
	}
	return kubetarget.NodeOf(ws)
}

// nonKernel is the escape spec's cluster questions on the Kubernetes targets.
func nonKernel() func(context.Context, target.Workspace) []verdict.Finding {
	if suite.Cluster == nil {
		return nil
	}
	version := suite.KataVersion
	if suite.Kind != nil {
		version = suite.Config.Kata.Version
	}
	return func(ctx context.Context, ws target.Workspace) []verdict.Finding {
		return specs.NonKernelFindings(ctx, specs.NonKernelInput{Target: suite.Cluster.Target, Agent: agents[kubetarget.NodeOf(ws)],
			KataVersion: version, Timeout: config.Duration{Duration: suite.Config.Interval("escape", "probe")},
			APIControls: apiControls, APIControlError: apiControlErr}, ws)
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

// setUpKind puts the run's images into the kind nodes and installs Kata, then starts
// the node agents.
func setUpKind(ctx context.Context) {
	cfg := suite.Config
	cli := suite.Docker.Client()
	err := suite.Kind.LoadArchive(cfg.Images.Workspace, func() (io.ReadCloser, error) {
		return cli.ImageSave(ctx, []string{cfg.Images.Workspace})
	})
	setupStep(err, "loading the workspace image into the kind nodes")
	done := suite.Phase("kind: kata-deploy install and readiness")
	err = suite.Kind.InstallKata(ctx, cfg.Interval("kind", "kata-ready"))
	done()
	setupStep(err, "installing Kata")
	img := agentImage(ctx)
	ref := "127.0.0.1/kwc/node-agent:" + suite.RunID
	setupStep(suite.Kind.Cluster.LoadImage(img, ref), "loading the node agent image")
	startAgents(ctx, ref)
}

// setUpCluster pushes the run's images to the registry the user named, then starts
// the node agents.
func setUpCluster(ctx context.Context) {
	cfg := suite.Config
	insecure := imagepush.Insecure(cfg.Cluster.Registry, cfg.Cluster.InsecureRegistry)
	done := suite.Phase("cluster: push images")
	wsImage, err := imagepush.FromEngine(ctx, suite.Docker.Client(), cfg.Images.Workspace, GinkgoT().TempDir())
	setupStep(err, "reading the workspace image from the engine")
	pinned, err := imagepush.Push(ctx, wsImage, cfg.Cluster.Registry+"/kwc/workspace:"+suite.RunID, insecure)
	setupStep(err, "pushing the workspace image")
	agentRef, err := imagepush.Push(ctx, agentImage(ctx), cfg.Cluster.Registry+"/kwc/node-agent:"+suite.RunID, insecure)
	setupStep(err, "pushing the node agent image")
	done()
	suite.Logf("pushed %s and %s", pinned, agentRef)
	suite.Recorder.SetEnv(map[string]string{"image.workspace.pushed": pinned, "image.nodeAgent": agentRef})
	startAgents(ctx, agentRef)
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
func startAgents(ctx context.Context, image string) {
	done := suite.Phase("cluster: node agents, probe reference, API checks' control")
	defer done()
	apiControls, apiControlErr = apichecks.Control(ctx, suite.Cluster.Target.RestConfig(), suite.RunID)
	if apiControlErr != nil {
		suite.Logf("API checks will be inconclusive: %v", apiControlErr)
	} else {
		suite.Recorder.SetEnv(map[string]string{"cluster.apiControl": fmt.Sprint(apiControls)})
	}
	agents, agentErr = suite.Cluster.StartAgent(ctx, image, suite.Config.Interval("cluster", "agent-start"))
	if agentErr != nil {
		suite.Logf("escape probes will be inconclusive: %v", agentErr)
		return
	}
	for node, a := range agents {
		suite.AddSecret(a.Token())
		suite.Recorder.SetEnv(map[string]string{"node." + node + ".canaries": strings.Join(a.Inventory(), "; "), "node." + node + ".kernel": a.Facts()["kernel"], "node." + node + ".bootID": a.Facts()["bootID"]})
		Expect(proberun.Install(ctx, a.Workspace(), probeBin)).To(Succeed(), "copying kwc-probe into the node agent on %s", node)
		res, ev, err := proberun.RunDirect(ctx, a.Workspace(), a.Spec(), suite.Config.Interval("escape", "probe"))
		Expect(err).NotTo(HaveOccurred(), "running kwc-probe in the node agent on %s as the reference:\n%s", node, ev)
		recordReference(node, a, res)
	}
}

var _ = AfterSuite(func() {
	if planted != nil {
		Expect(planted.Remove()).To(Succeed(), "removing the canaries from the node (kwc cleanup --run %s removes leftovers)", suite.RunID)
	}
})

var _ = ReportAfterSuite("kwc conformance report", func(r Report) {
	if !r.SuiteSucceeded && len(r.SpecialSuiteFailureReasons) > 0 {
		suite.Recorder.SetRunError(r.SpecialSuiteFailureReasons[0])
	}
	// The judge: every escape verdict from every lane's observation, now that all
	// lanes have run.
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
