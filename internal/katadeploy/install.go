package katadeploy

import (
	"context"
	"fmt"
	"os"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/registry"
	"helm.sh/helm/v4/pkg/release"

	"kwc.dev/kwc/internal/config"
)

// Release is the Helm release name kata-deploy is installed under.
const Release = "kata-deploy"

// Install installs the kata-deploy chart with the Helm SDK.
type Install struct {
	Kubeconfig string
	Kata       config.Kata
	// Namespace is where the chart goes (kube-system, as its docs say).
	Namespace string
	// ClientOnly renders without a cluster (what --kwc.dry-run shows).
	ClientOnly bool
	Timeout    time.Duration
}

// Run locates the chart (pulling it from its OCI registry at the pinned version, or a
// local directory), installs it with kwc's values and returns the rendered manifest.
// It does not wait for the chart's pods: Ready judges kata-deploy's own signals.
func (in Install) Run(ctx context.Context) (string, error) {
	values, err := Values(in.Kata)
	if err != nil {
		return "", err
	}
	if in.Namespace == "" {
		in.Namespace = "kube-system"
	}
	settings := cli.New()
	settings.KubeConfig = in.Kubeconfig
	settings.SetNamespace(in.Namespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(settings.RESTClientGetter(), in.Namespace, "secret"); err != nil {
		return "", fmt.Errorf("helm: %w", err)
	}
	rc, err := registry.NewClient(registry.ClientOptWriter(os.Stderr))
	if err != nil {
		return "", fmt.Errorf("helm registry client: %w", err)
	}
	cfg.RegistryClient = rc
	inst := action.NewInstall(cfg)
	inst.ReleaseName = Release
	inst.Namespace = in.Namespace
	inst.Version = in.Kata.Version
	inst.Timeout = in.Timeout
	inst.WaitStrategy = kube.HookOnlyStrategy
	inst.Labels = map[string]string{"app.kubernetes.io/managed-by": "kwc"}
	if in.ClientOnly {
		inst.DryRunStrategy = action.DryRunClient
	}
	path, err := inst.LocateChart(in.Kata.Chart, settings)
	if err != nil {
		return "", fmt.Errorf("locating the kata-deploy chart %s %s: %w", in.Kata.Chart, in.Kata.Version, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return "", fmt.Errorf("loading the chart from %s: %w", path, err)
	}
	if v := ch.Metadata.Version; v != in.Kata.Version {
		return "", fmt.Errorf("the chart at %s is version %s, kwc.yaml pins %s", path, v, in.Kata.Version)
	}
	rel, err := inst.RunWithContext(ctx, ch, values)
	if err != nil {
		return "", fmt.Errorf("installing kata-deploy %s: %w", in.Kata.Version, err)
	}
	acc, err := release.NewAccessor(rel)
	if err != nil {
		return "", err
	}
	return acc.Manifest(), nil
}
