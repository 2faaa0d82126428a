// Package katadeploy installs Kata with the kata-deploy Helm chart and decides when
// the install is ready, from the signals the chart and its installer give: DaemonSet
// pods ready, node labels, the kubelet's runtime handlers, RuntimeClasses, nodes Ready
// again after the containerd restart.
package katadeploy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/kataversion"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/config"
)

// structuredSince is the first chart release with structured shim values (shims.<n>);
// earlier charts take a flat env block.
var structuredSince = kataversion.MustParse("3.23.0")

// Distributions are the k8sDistribution values kata-deploy knows. Since 4.x a value
// that does not match the cluster aborts the install, so kwc reads it from the nodes.
var Distributions = []string{"k8s", "k3s", "rke2", "k0s", "microk8s"}

// Distribution reads the cluster's distribution from its nodes: the kubelet's version
// suffix (v1.33.1+k3s1, +rke2r1, +k0s) or microk8s's node label; anything else is
// plain k8s (kind, kubeadm). Nodes that disagree are an error: one chart install
// cannot suit both. A cluster with no nodes yet is plain k8s: nothing says otherwise,
// and readiness then waits for nodes and says so.
func Distribution(nodes []corev1.Node) (string, error) {
	if len(nodes) == 0 {
		return "k8s", nil
	}
	seen := map[string][]string{}
	for _, n := range nodes {
		d := "k8s"
		kv := n.Status.NodeInfo.KubeletVersion
		switch {
		case strings.Contains(kv, "+k3s"):
			d = "k3s"
		case strings.Contains(kv, "+rke2"):
			d = "rke2"
		case strings.Contains(kv, "+k0s"):
			d = "k0s"
		case n.Labels["microk8s.io/cluster"] != "":
			d = "microk8s"
		}
		seen[d] = append(seen[d], n.Name)
	}
	if len(seen) > 1 {
		return "", fmt.Errorf("the nodes run different Kubernetes distributions (%v); kata-deploy takes one k8sDistribution per install", seen)
	}
	for d := range seen {
		return d, nil
	}
	return "", nil
}

// defaultShim is the chart's default when the run installs it, else the first shim:
// the chart refuses a defaultShim it does not enable.
func defaultShim(shims []string) string {
	if slices.Contains(shims, katashims.DefaultShim) {
		return katashims.DefaultShim
	}
	return shims[0]
}

// Values are the chart values kwc installs with: only the configured shims, each a
// RuntimeClass with its overhead, no snapshotter set-up (nydus installs a host systemd
// unit that nothing here uses), debug classes only on request. dist is the cluster's
// k8sDistribution (Distribution); empty means k8s.
func Values(k config.Kata, dist string) (map[string]any, error) {
	v, err := kataversion.Parse(k.Version)
	if err != nil {
		return nil, err
	}
	if len(k.Shims) == 0 {
		return nil, fmt.Errorf("no shims to install")
	}
	if dist == "" {
		dist = "k8s"
	}
	if !slices.Contains(Distributions, dist) {
		return nil, fmt.Errorf("k8sDistribution %q: kata-deploy knows %s", dist, strings.Join(Distributions, ", "))
	}
	if !v.AtLeast(structuredSince) {
		return map[string]any{
			"k8sDistribution": dist,
			"env": map[string]any{
				"shims":                     strings.Join(k.Shims, " "),
				"defaultShim":               defaultShim(k.Shims),
				"createRuntimeClasses":      "true",
				"createDefaultRuntimeClass": "false",
				"debug":                     strconv.FormatBool(k.Debug),
				"snapshotterHandlerMapping": "",
			},
		}, nil
	}
	shims := map[string]any{"disableAll": true}
	for _, s := range k.Shims {
		shims[s] = map[string]any{"enabled": true}
	}
	return map[string]any{
		"k8sDistribution": dist,
		"shims":           shims,
		"defaultShim":     map[string]any{"amd64": defaultShim(k.Shims)},
		"runtimeClasses":  map[string]any{"enabled": true, "createDefault": false, "overheadEnabled": true},
		"snapshotter":     map[string]any{"setup": []any{}},
		"debug":           k.Debug,
	}, nil
}

// RuntimeClasses are the classes (and kubelet handlers) the install must create.
func RuntimeClasses(k config.Kata) []string {
	var out []string
	for _, s := range k.Shims {
		out = append(out, "kata-"+s)
		if k.Debug {
			out = append(out, "kata-"+s+"-debug")
		}
	}
	return out
}

// InstanceLabel is the per-instance node label kata-deploy 4.1 and later add besides
// katacontainers.io/kata-runtime=true; earlier releases have none.
func InstanceLabel(version string) string {
	v, err := kataversion.Parse(version)
	if err == nil && v.AtLeast(kataversion.MustParse("4.1.0")) {
		return "kata-deploy.katacontainers.io/default"
	}
	return ""
}

// Overhead is the memory and CPU a RuntimeClass adds to every pod, as the 4.x chart
// sets it: a ResourceQuota must leave this much room.
func Overhead(shim string) (memory, cpu string) {
	switch {
	case strings.HasPrefix(shim, "qemu"):
		return "320Mi", "250m"
	default:
		return "130Mi", "250m"
	}
}

// VersionAnnotation is where kata-deploy (4.1.0 and later) records the Kata version on each
// RuntimeClass it creates: the version the configuration checks compare against the
// advisories.
const VersionAnnotation = "katacontainers.io/kata-version"

// RuntimeClassObjects are the RuntimeClasses kata-deploy creates (4.x shape: handler
// equal to the name, the chart's overhead, scheduled onto nodes the installer
// labelled), for clusters where kwc checks them and for API tests.
func RuntimeClassObjects(k config.Kata) []nodev1.RuntimeClass {
	var out []nodev1.RuntimeClass
	for _, name := range RuntimeClasses(k) {
		shim := strings.TrimSuffix(strings.TrimPrefix(name, "kata-"), "-debug")
		mem, cpu := Overhead(shim)
		sel := map[string]string{"katacontainers.io/kata-runtime": "true"}
		if l := InstanceLabel(k.Version); l != "" {
			sel[l] = "true"
		}
		out = append(out, nodev1.RuntimeClass{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "kata-deploy"},
				Annotations: map[string]string{VersionAnnotation: k.Version}},
			Handler:    name,
			Overhead:   &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourceCPU: resource.MustParse(cpu)}},
			Scheduling: &nodev1.Scheduling{NodeSelector: sel},
		})
	}
	return out
}
