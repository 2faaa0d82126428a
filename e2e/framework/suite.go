// Package framework wires kwc's plain packages (config, targets, images, reports) into
// the Ginkgo suite: the run, its workspaces, and the evidence specs record.
package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/clusters/kindcluster"
	"kwc.dev/kwc/internal/clusters/kindrun"
	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/clusters/plan"
	"kwc.dev/kwc/internal/clusters/preflight"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/images/localregistry"
	"kwc.dev/kwc/internal/images/nodeimage"
	"kwc.dev/kwc/internal/kube/clusterrun"
	"kwc.dev/kwc/internal/reporting/report"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/target/dockertarget"
	"kwc.dev/kwc/kindconfigs"
)

// Flags are the suite's flags (--kwc.*).
type Flags struct {
	Config     string
	Target     string
	ReportsDir string
	Keep       bool
	DryRun     bool
	// Reuse runs against a kept kind cluster instead of creating one.
	Reuse string
	// Parallel is which of the run's Ginkgo processes this is.
	Parallel Parallel
}

// ErrDryRun ends Setup after the plan is printed: nothing was created.
var ErrDryRun = errors.New("dry run: plan printed, nothing created")

// Suite is one run of the suite.
type Suite struct {
	Config   *config.Config
	RunID    string
	Dir      string // reports/<timestamp>-<id>
	Target   target.Target
	Docker   *dockertarget.Target // set on the docker target
	Lanes    []config.Lane
	Registry *localregistry.Registry
	Recorder *report.Recorder
	// Kind is the kind environment on the kind target.
	Kind *kindrun.Env
	// Cluster is the run on a Kubernetes cluster (kind's or the user's).
	Cluster *clusterrun.Env
	// KataVersion is what kata-deploy annotated on the RuntimeClasses (cluster target).
	KataVersion string
	// Failed is set before Finish when any spec failed: kind's logs are kept then.
	Failed bool
	// State is what every process of the run shares (Adopt); Parallel says which
	// process this is.
	State    RunState
	Parallel Parallel
	// Agents are the node agents on Kubernetes targets, by node.
	Agents clusterrun.Agents
	// nodes are where canaries are held, by node ("" on docker).
	nodes map[string]Node
	Out   io.Writer // progress lines
	// secrets are redacted from every artifact and evidence text.
	secrets secrets
	start   time.Time
	run     report.Run
	flags   Flags
}

// Setup loads the config and prepares the run folder, before anything can fail slowly.
// The returned suite always has a Recorder and Dir, so even a failed setup leaves a
// report.
func Setup(ctx context.Context, f Flags, out io.Writer) (*Suite, error) {
	if f.Parallel.Total == 0 {
		f.Parallel = Parallel{Process: 1, Total: 1}
	}
	s := &Suite{RunID: f.Parallel.runID(), Out: out, start: time.Now(), flags: f, Parallel: f.Parallel}
	cfg, err := config.Load(f.Config, config.Overrides{Target: f.Target, ReportsDir: f.ReportsDir, Keep: f.Keep,
		Registry: os.Getenv("KWC_REGISTRY"), ContainerdSocket: os.Getenv("KWC_CONTAINERD_SOCKET"), ContainerdConfig: os.Getenv("KWC_CONTAINERD_CONFIG")})
	reportsDir := f.ReportsDir
	if reportsDir == "" {
		reportsDir = "reports"
	}
	if cfg != nil {
		reportsDir = cfg.ReportsDir
	}
	if abs, aerr := filepath.Abs(reportsDir); aerr == nil {
		reportsDir = abs
	}
	s.Dir = filepath.Join(reportsDir, s.start.UTC().Format("20060102-150405")+"-"+s.RunID)
	run := report.Run{ID: s.RunID, Start: s.start.UTC(), Kwc: Version(), Commit: commit, Config: cfg}
	if cfg != nil {
		run.Target = string(cfg.Target)
	}
	s.run = run
	s.Recorder = report.NewRecorder(run, nil)
	if err != nil {
		return s, err
	}
	s.Config = cfg
	// Process 1 owns the report folder; the others learn it when they adopt the run.
	if s.Parallel.Process <= 1 {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return s, fmt.Errorf("creating the report folder %s: %w", s.Dir, err)
		}
	}
	// The kind target brings its cluster up in process 1 and the others connect to it;
	// installing Kata on an existing cluster decides the lanes, which every process
	// must know before the specs are built.
	if s.Parallel.Total > 1 && cfg.Target == config.TargetCluster && cfg.Kata.Install && !f.DryRun {
		return s, fmt.Errorf("the cluster target with kata.install cannot run in %d parallel processes yet: its lanes come from the RuntimeClasses the install makes; run it with one process (make e2e PARALLEL=1)", s.Parallel.Total)
	}
	switch cfg.Target {
	case config.TargetDocker:
		dt, err := dockertarget.New(s.RunID, cfg.Images.Workspace)
		if err != nil {
			return s, err
		}
		s.Target, s.Docker = dt, dt
	case config.TargetKind:
		return s, s.setupKind(ctx, f.DryRun)
	case config.TargetCluster:
		return s, s.setupCluster(ctx, f.DryRun)
	}
	if f.DryRun {
		fmt.Fprintf(s.Out, "kwc plan for target docker (dry run): lanes from the engine's runtimes; run without --kwc.dry-run to build the workspace image and start them\n")
		return s, ErrDryRun
	}
	if err := s.Target.Preflight(ctx); err != nil {
		return s, err
	}
	runtimes, err := s.Target.Runtimes(ctx)
	if err != nil {
		return s, err
	}
	lanes, err := cfg.EffectiveLanes(runtimes)
	if err != nil {
		return s, err
	}
	sandboxNote := ""
	if sr := cfg.Docker.SandboxRuntime; sr != "" && len(cfg.Docker.SandboxLanes) > 0 && !slices.Contains(runtimes, sr) {
		sandboxNote = fmt.Sprintf("not run: the engine has no %q runtime (make runsc, then register it in daemon.json; see the README)", sr)
		s.Logf("no gVisor lanes: the engine has no %q runtime. To add them, build runsc (make runsc) and register it in dockerd's daemon.json, then restart dockerd:\n%s", sr, dockertarget.RuntimeDaemonJSON(sr))
	}
	s.Lanes = lanes
	s.Recorder = report.NewRecorder(run, lanes)
	s.Recorder.SetEnv(s.Target.Describe(ctx))
	if sandboxNote != "" {
		s.Recorder.SetEnv(map[string]string{"lanes.gvisor": sandboxNote})
	}
	return s, nil
}

// setupKind plans the kind run and preflights the host before anything slow, then
// (process 1 only; the others connect when they adopt the run) makes the node image
// when asked for kwc's offline one and brings the cluster up through kind's library.
// Kata is installed later, in the run's setup, when kindCluster.kata is install.
func (s *Suite) setupKind(ctx context.Context, dryRun bool) error {
	cluster, err := kindconfigs.Load(s.Config.KindCluster.Config, "kwc-"+s.RunID)
	if err != nil {
		return err
	}
	kata := s.Config.KindCluster.Kata
	var checks []preflight.Check
	if kata == config.KindKataInstall {
		checks = preflight.System().KVM()
	}
	engine := preflight.Check{Name: "container engine (kind's node provider)", Fix: "start dockerd or set DOCKER_HOST"}
	if dt, err := dockertarget.New(s.RunID, s.Config.Images.Workspace); err != nil {
		engine.Detail = err.Error()
	} else if err := dt.Preflight(ctx); err != nil {
		engine.Detail = strings.SplitN(err.Error(), "\n", 2)[0]
	} else {
		engine.OK, engine.Detail = true, "answers"
	}
	checks = append([]preflight.Check{engine}, checks...)
	p, err := plan.ForKind(s.Config, cluster, checks)
	if err != nil {
		return err
	}
	if dryRun {
		if err := p.Print(s.Out); err != nil {
			return err
		}
		return ErrDryRun
	}
	hint := "Without KVM, run the same criteria against the local engine (make e2e TARGET=docker), or kind without Kata (kindCluster.kata: none)"
	if err := preflight.Error(checks, hint); err != nil {
		return err
	}
	// kind's node provider is the local engine; it also builds the run's images.
	dt, err := dockertarget.New(s.RunID, s.Config.Images.Workspace)
	if err != nil {
		return err
	}
	s.Docker = dt
	s.Lanes = p.Lanes
	s.Recorder = report.NewRecorder(s.run, s.Lanes)
	env := map[string]string{"kind.version": nodeimage.KindVersion(), "kind.kata": string(kata)}
	if kata == config.KindKataInstall {
		env["kata.version"], env["kata.chart"] = s.Config.Kata.Version, s.Config.Kata.Chart
		s.Recorder.SetEnv(ShimFacts(s.Config.Kata.Shims))
	}
	s.Recorder.SetEnv(env)
	if s.Parallel.Process > 1 {
		return nil
	}
	nodeImage := ""
	if s.flags.Reuse == "" {
		if nodeImage, err = s.kindNodeImage(ctx, dt, cluster.Nodes[0].Image); err != nil {
			return err
		}
	}
	upStart := time.Now()
	kenv, err := kindrun.Up(ctx, kindrun.Options{Config: s.Config, RunID: s.RunID, Dir: s.Dir, NodeImage: nodeImage, Reuse: s.flags.Reuse, Logf: s.Logf})
	s.Kind = kenv
	if err != nil {
		return err
	}
	s.Target, s.Cluster = kenv.Target, kenv.Env
	s.Recorder.AddPhase("kind: cluster", upStart, time.Now())
	s.Recorder.SetEnv(map[string]string{"kind.cluster": kenv.Cluster.Name})
	s.Recorder.SetEnv(s.Target.Describe(ctx))
	return nil
}

// kindNodeImage is the image the cluster's nodes are created from, recorded with how
// it was made: kwc's offline one (built when the engine lacks it), the one the config
// names, or kind's published one that the kind config pins.
func (s *Suite) kindNodeImage(ctx context.Context, dt *dockertarget.Target, pinned string) (string, error) {
	img, madeBy := s.Config.KindCluster.NodeImage, "named by kindCluster.nodeImage"
	switch img {
	case config.NodeImageOffline:
		done := s.Phase("kind: kwc's offline node image")
		ref, err := nodeimage.Offline{Kubernetes: kubeapitest.Version, CacheDir: cachedir.Path(), Mirror: s.Config.Images.DebianMirror,
			Logf: s.Logf}.Ensure(ctx, dt.Client())
		done()
		if err != nil {
			return "", fmt.Errorf("kwc's offline node image (kindCluster.nodeImage: offline; make node-image builds its binaries first): %w", err)
		}
		img, madeBy = ref, "kwc node-image: Debian bookworm, kind "+nodeimage.KindVersion()+"'s base files, containerd and Kubernetes "+kubeapitest.Version+" built from their Go modules"
	case "":
		img, madeBy = pinned, "kind's published node image, as kindconfigs/"+s.Config.KindCluster.Config+" pins it"
	}
	s.Recorder.SetEnv(map[string]string{"kind.nodeImage": img, "kind.nodeImage.madeBy": madeBy})
	return img, nil
}

// connectKind joins the kind cluster process 1 brought up (parallel runs).
func (s *Suite) connectKind(dir string) error {
	env, err := kindrun.Connect(kindrun.Options{Config: s.Config, RunID: s.RunID, Dir: dir, Logf: s.Logf}, kindcluster.KubeconfigPath(dir))
	if err != nil {
		return fmt.Errorf("connecting to the kind cluster process 1 made: %w", err)
	}
	s.Target, s.Cluster = env.Target, env
	return nil
}

// setupCluster connects to an existing cluster, installs Kata only when asked, and
// takes its lanes from the RuntimeClasses present (or named in the config).
func (s *Suite) setupCluster(ctx context.Context, dryRun bool) error {
	kubeconfig, err := kubeconfigPath(s.Config.Cluster.Kubeconfig)
	if err != nil {
		return err
	}
	// kind's node provider is also the engine that builds the images here.
	dt, err := dockertarget.New(s.RunID, s.Config.Images.Workspace)
	if err != nil {
		return err
	}
	s.Docker = dt
	env, err := clusterrun.New(clusterrun.Options{Config: s.Config, RunID: s.RunID, Kubeconfig: kubeconfig, Target: string(config.TargetCluster),
		Image: s.Config.Cluster.Registry + "/kwc/workspace:" + s.RunID, Logf: s.Logf})
	if err != nil {
		return err
	}
	if err := env.Target.Preflight(ctx); err != nil {
		return err
	}
	s.Target, s.Cluster = env.Target, env
	if !dryRun {
		if err := dt.Preflight(ctx); err != nil {
			return fmt.Errorf("the cluster target builds the run's images with the local engine: %w", err)
		}
	}
	if s.Config.Kata.Install && !dryRun {
		defer s.Phase("cluster: kata-deploy install and readiness")()
		if err := env.InstallKata(ctx, s.Config.Interval("kind", "kata-ready")); err != nil {
			return err
		}
	}
	rcs, kataVersion, err := env.RuntimeClasses(ctx)
	if err != nil {
		return err
	}
	lanes, err := s.Config.ClusterLanes(rcs)
	if err != nil {
		return err
	}
	if dryRun {
		dist, err := env.KubernetesDistribution(ctx)
		if err != nil {
			return err
		}
		p, err := plan.ForCluster(s.Config, kubeconfig, dist, lanes)
		if err != nil {
			return err
		}
		if err := p.Print(s.Out); err != nil {
			return err
		}
		return ErrDryRun
	}
	s.Lanes, s.KataVersion = lanes, kataVersion
	s.Recorder = report.NewRecorder(s.run, lanes)
	s.Recorder.SetEnv(map[string]string{"cluster.kubeconfig": kubeconfig, "cluster.registry": s.Config.Cluster.Registry, "kata.version": kataVersion})
	if s.Config.Kata.Install {
		s.Recorder.SetEnv(ShimFacts(s.Config.Kata.Shims))
		s.Recorder.SetEnv(map[string]string{"kata.k8sDistribution": env.Distribution})
	}
	s.Recorder.SetEnv(s.Target.Describe(ctx))
	return nil
}

// kubeconfigPath is the config's kubeconfig, else $KUBECONFIG, else ~/.kube/config.
func kubeconfigPath(configured string) (string, error) {
	p := configured
	if p == "" {
		p = os.Getenv("KUBECONFIG")
	}
	if p == "" {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, ".kube", "config")
		}
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the cluster target needs a kubeconfig: %q cannot be read (%v)\n  fix: set KUBECONFIG, or cluster.kubeconfig in kwc.yaml", p, err)
	}
	return p, nil
}

// Logf prints a timestamped progress line.
func (s *Suite) Logf(format string, args ...any) {
	fmt.Fprintf(s.Out, "%s kwc: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Finish writes the report, prints the matrix and removes what the run left, unless
// the user asked to keep it.
func (s *Suite) Finish(ctx context.Context) (report.Conformance, error) {
	// Which shims ran is a fact of runs that install Kata; a kind run without Kata
	// would list every shim as not run.
	kindKata := s.Kind != nil && s.Config.KindCluster.Kata == config.KindKataInstall
	if kindKata || (s.Kind == nil && s.Cluster != nil && s.Config.Kata.Install) {
		s.Recorder.SetEnv(ShimsRan(s.Config.Kata.Shims, s.Recorder.Snapshot(time.Now().UTC()).Lanes))
	}
	c := s.Recorder.Snapshot(time.Now().UTC())
	var errs []error
	if s.Dir != "" {
		if err := report.WriteAll(s.Dir, c); err != nil {
			errs = append(errs, err)
		} else {
			s.Logf("report: %s (summary.md, index.html, junit.xml beside it)", filepath.Join(s.Dir, "conformance.json"))
		}
		// GitHub Actions shows this file on the run's page.
		if p := os.Getenv("GITHUB_STEP_SUMMARY"); p != "" {
			if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				report.Markdown(f, c)
				f.Close()
			}
		}
	}
	if s.Registry != nil {
		_ = s.Registry.Close()
	}
	if s.Target != nil && (s.Config == nil || !s.Config.Keep) {
		if err := s.Target.Cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
	}
	switch {
	case s.Kind != nil:
		if err := s.Kind.Down(ctx, s.Failed || c.Run.Error != "", s.Config.Keep); err != nil {
			errs = append(errs, err)
		}
	case s.Cluster != nil && !s.Config.Keep:
		if err := s.Cluster.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("finishing the run: %v", errs)
	}
	return c, nil
}

// Version is kwc's version, stamped by the Makefile through -ldflags.
func Version() string { return version }

var version = "dev"

// commit is the git commit the suite was built from, stamped like version.
var commit = ""

// Phase times a step of the run into the report.
func (s *Suite) Phase(name string) func() {
	start := time.Now()
	return func() { s.Recorder.AddPhase(name, start, time.Now()) }
}

// Start is when the run started.
func (s *Suite) Start() time.Time { return s.start }
