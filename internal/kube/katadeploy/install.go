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
	// Distribution is the cluster's k8sDistribution (Distribution); empty is k8s.
	Distribution string
	// Namespace is where the chart goes (kube-system, as its docs say).
	Namespace string
	// ClientOnly renders without a cluster (what --kwc.dry-run shows).
	ClientOnly bool
	Timeout    time.Duration
}

func helmConfig(kubeconfig, namespace string) (*action.Configuration, *cli.EnvSettings, error) {
	settings := cli.New()
	settings.KubeConfig = kubeconfig
	settings.SetNamespace(namespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(settings.RESTClientGetter(), namespace, "secret"); err != nil {
		return nil, nil, fmt.Errorf("helm: %w", err)
	}
	return cfg, settings, nil
}

// Uninstall removes the kata-deploy release with the Helm SDK and waits for what it
// deleted to be gone. Whether the node is clean again is Gone's question.
func Uninstall(ctx context.Context, kubeconfig, namespace string, timeout time.Duration) error {
	if namespace == "" {
		namespace = "kube-system"
	}
	cfg, _, err := helmConfig(kubeconfig, namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = timeout
	un.WaitStrategy = kube.StatusWatcherStrategy
	if _, err := un.Run(Release); err != nil {
		return fmt.Errorf("uninstalling kata-deploy: %w", err)
	}
	return nil
}

// Gone names what of an install is still there after Uninstall: the DaemonSet, the
// RuntimeClasses kata-deploy made, node labels saying Kata runs there. Empty means
// uninstalled.
func Gone(s State, classes []string) []string {
	var left []string
	if s.DaemonSet != nil {
		left = append(left, "the kata-deploy DaemonSet")
	}
	for _, rc := range s.RuntimeClasses {
		for _, c := range classes {
			if rc.Name == c {
				left = append(left, "RuntimeClass "+c)
			}
		}
	}
	for _, n := range s.Nodes {
		if n.Labels[nodeLabel] == "true" {
			left = append(left, "node "+n.Name+" still labelled "+nodeLabel+"=true")
		}
	}
	return left
}

// Run locates the chart (pulling it from its OCI registry at the pinned version, or a
// local directory), installs it with kwc's values and returns the rendered manifest.
// It does not wait for the chart's pods: Ready judges kata-deploy's own signals.
func (in Install) Run(ctx context.Context) (string, error) {
	values, err := Values(in.Kata, in.Distribution)
	if err != nil {
		return "", err
	}
	if in.Namespace == "" {
		in.Namespace = "kube-system"
	}
	cfg, settings, err := helmConfig(in.Kubeconfig, in.Namespace)
	if err != nil {
		return "", err
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
