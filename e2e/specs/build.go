package specs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
)

// BuildSpecInput is what BuildSpec needs.
type BuildSpecInput struct {
	Suite    *framework.Suite
	Lane     config.Lane
	Tools    *Toolbox
	Fixtures []dockerfiles.Fixture
	Base     framework.FixtureBase
}

// BuildSpec builds every fixture with every configured tool inside the workspace,
// pushes each result to the in-process registry and compares the config read back
// with what the Dockerfile declares.
func BuildSpec(inputGetter func() BuildSpecInput) {
	It("builds every Dockerfile fixture with docker, buildah and podman, and the registry shows what each Dockerfile declares", framework.Label(framework.LabelBuild), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Suite).NotTo(BeNil(), "Invalid argument. input.Suite can't be nil when calling BuildSpec")
		Expect(in.Tools).NotTo(BeNil(), "Invalid argument. input.Tools can't be nil when calling BuildSpec: the lane's workspace did not start")
		Expect(in.Fixtures).NotTo(BeEmpty(), "Invalid argument. input.Fixtures can't be empty when calling BuildSpec")
		scratch := GinkgoT().TempDir()
		var names []string
		for _, f := range in.Fixtures {
			names = append(names, f.Name)
		}
		checks := toolChecks(ctx, in.Suite, in.Tools, in.Lane, "build", in.Suite.Config.Criteria.Build.Tools, names, func(tool string, i int) (verdict.Check, error) {
			return buildAndVerify(ctx, in, tool, in.Fixtures[i], scratch)
		})
		crit := verdict.ByTool(checks, in.Suite.Config.Criteria.Build)
		in.Suite.Record(in.Lane, "build", crit)
		framework.ExpectCriterion(in.Lane, "build", crit)
	})
}

func buildAndVerify(ctx context.Context, in BuildSpecInput, tool string, f dockerfiles.Fixture, scratch string) (verdict.Check, error) {
	built, err := in.Tools.BuildFixture(ctx, tool, f, scratch)
	if err != nil {
		return verdict.Check{}, err
	}
	c := verdict.Check{Evidence: built.Evidence}
	if built.Image == nil {
		c.Verdict, c.Reason = verdict.Fail, tool+" could not build or save "+f.Name+": "+lastLine(built.Evidence)
		return c, nil
	}
	d, err := in.Suite.Registry.Push(ctx, fmt.Sprintf("kwc/built/%s/%s:%s", in.Lane.Name, f.Name, tool), built.Image)
	if err != nil {
		return c, err
	}
	back, err := in.Suite.Registry.Image(ctx, d)
	if err != nil {
		return c, err
	}
	problems, summary, err := compareImage(back, f.Expect, in.Base.Layers)
	if err != nil {
		return c, err
	}
	c.Evidence += "registry: " + d.String() + "\n" + summary
	if len(problems) > 0 {
		c.Verdict, c.Reason = verdict.Fail, "the image read back differs from the Dockerfile: "+strings.Join(problems, "; ")
		return c, nil
	}
	c.Verdict = verdict.Pass
	return c, nil
}

// compareImage checks an image read back from the registry against a fixture's
// expectations; it returns every difference, and a summary of what it read.
func compareImage(img v1.Image, x dockerfiles.Expectation, baseLayers int) ([]string, string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", fmt.Errorf("reading the image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, "", fmt.Errorf("reading the image layers: %w", err)
	}
	cfg := cf.Config
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	summary := fmt.Sprintf("config: user=%q workdir=%q cmd=%q env=%q labels=%v layers=%d (base %d)\n",
		cfg.User, cfg.WorkingDir, cfg.Cmd, cfg.Env, cfg.Labels, len(layers), baseLayers)
	var problems []string
	if got := len(layers) - baseLayers; got != x.LayersAdded {
		problems = append(problems, fmt.Sprintf("layers added %d, want %d", got, x.LayersAdded))
	}
	if cfg.User != x.User {
		problems = append(problems, fmt.Sprintf("user %q, want %q", cfg.User, x.User))
	}
	if x.WorkingDir != "" && cfg.WorkingDir != x.WorkingDir {
		problems = append(problems, fmt.Sprintf("workdir %q, want %q", cfg.WorkingDir, x.WorkingDir))
	}
	if x.Cmd != nil && !slices.Equal(cfg.Cmd, x.Cmd) {
		problems = append(problems, fmt.Sprintf("cmd %q, want %q", cfg.Cmd, x.Cmd))
	}
	for _, k := range slices.Sorted(maps.Keys(x.Env)) {
		if env[k] != x.Env[k] {
			problems = append(problems, fmt.Sprintf("env %s=%q, want %q", k, env[k], x.Env[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(x.Labels)) {
		if cfg.Labels[k] != x.Labels[k] {
			problems = append(problems, fmt.Sprintf("label %s=%q, want %q", k, cfg.Labels[k], x.Labels[k]))
		}
	}
	return problems, summary, nil
}
