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

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/e2e/specs"
	"kwc.dev/kwc/internal/baseimage"
	"kwc.dev/kwc/internal/engineimage"
	"kwc.dev/kwc/internal/kubeagent"
	"kwc.dev/kwc/internal/localregistry"
	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/proberun"
	"kwc.dev/kwc/internal/report"
	"kwc.dev/kwc/internal/verdict"
)

var (
	flags framework.Flags
	// agent holds this run's canaries on the node; agentErr says why there are none.
	agent    nodeagent.Canaries
	planted  *nodeagent.Planted
	agentErr error
	probeBin []byte
	// nodeRef is the probe set run on the node itself: the reference that reaches all.
	nodeRef  []verdict.ProbeVerdict
	controls = verdict.Controls{}
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
		CacheDir: framework.CacheDir(),
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
	if suite.Kind != nil {
		setUpKind(ctx)
		return
	}
	// Canaries go down before any workspace starts: a privileged container sees the
	// host's device nodes (the loop canary) as they were when it was created.
	engineID, sockets, err := suite.Docker.EngineIdentity(ctx)
	Expect(err).NotTo(HaveOccurred())
	planted, agentErr = nodeagent.Plant(nodeagent.Options{RunID: suite.RunID, Sockets: sockets, EngineID: engineID, Logf: suite.Logf})
	if agentErr != nil {
		suite.Logf("escape probes will be inconclusive: %v", agentErr)
	} else {
		agent = planted
		suite.Recorder.SetEnv(map[string]string{"canaries": strings.Join(agent.Inventory(), "; "), "node.bootID": agent.Facts()["bootID"], "node.kernel": agent.Facts()["kernel"], "node.cgroupMode": agent.Facts()["cgroupMode"]})
		res, err := proberun.OnNode(ctx, probePath, agent.Spec())
		Expect(err).NotTo(HaveOccurred(), "running kwc-probe on the node as the reference")
		nodeRef = verdict.JudgeAll(res, agent.Facts(), verdict.Secret{Marker: agent.Spec().Marker, Token: agent.Token()})
		var missed []string
		for _, v := range nodeRef {
			if v.Result != verdict.Reached && v.Result != verdict.NotApplicable {
				missed = append(missed, v.ID+" "+string(v.Result))
			}
		}
		suite.Recorder.SetEnv(map[string]string{"node.probeReference": fmt.Sprintf("%d probes, not reached on the node: %v", len(nodeRef), missed)})
	}
}, NodeTimeout(cfgTimeout("build", "image")+cfgTimeout("kind", "setup")))

// setupStep fails the setup with what it was doing, and records why the run did not
// complete in the report.
func setupStep(err error, doing string) {
	GinkgoHelper()
	if err != nil {
		suite.Recorder.SetRunError(doing + ": " + err.Error())
	}
	Expect(err).NotTo(HaveOccurred(), doing)
}

// setUpKind puts the run's images into the kind nodes, installs Kata and starts the
// node agent, whose canaries the escape specs judge against.
func setUpKind(ctx context.Context) {
	cfg := suite.Config
	cli := suite.Docker.Client()
	err := suite.Kind.LoadArchive(cfg.Images.Workspace, func() (io.ReadCloser, error) {
		return cli.ImageSave(ctx, []string{cfg.Images.Workspace})
	})
	Expect(err).NotTo(HaveOccurred(), "loading the workspace image into the kind nodes")
	done := suite.Phase("kind: kata-deploy install and readiness")
	err = suite.Kind.InstallKata(ctx, cfg.Interval("kind", "kata-ready"))
	done()
	setupStep(err, "installing Kata")
	agentBin, _, err := proberun.BuildCommand(ctx, GinkgoT().TempDir(), "kwc-agent")
	Expect(err).NotTo(HaveOccurred(), "building kwc-agent")
	img, err := kubeagent.Image(agentBin)
	Expect(err).NotTo(HaveOccurred())
	ref := "127.0.0.1/kwc/node-agent:" + suite.RunID
	Expect(suite.Kind.Cluster.LoadImage(img, ref)).To(Succeed(), "loading the node agent image")
	agent, agentErr = suite.Kind.StartAgent(ctx, ref)
	if agentErr != nil {
		suite.Logf("escape probes will be inconclusive: %v", agentErr)
		return
	}
	suite.Recorder.SetEnv(map[string]string{"canaries": strings.Join(agent.Inventory(), "; "), "node.bootID": agent.Facts()["bootID"], "node.kernel": agent.Facts()["kernel"]})
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
	suite.Failed = !r.SuiteSucceeded
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := suite.Finish(ctx)
	report.Matrix(os.Stdout, c)
	Expect(err).NotTo(HaveOccurred())
})

// cfgTimeout reads an interval at tree-construction time, when the config is loaded.
func cfgTimeout(spec, key string) time.Duration {
	if suite == nil || suite.Config == nil {
		return time.Hour
	}
	return suite.Config.Interval(spec, key)
}
