// Package katadeploy installs Kata with the kata-deploy Helm chart and decides when
// the install is ready, from the signals the chart and its installer give: DaemonSet
// pods ready, node labels, the kubelet's runtime handlers, RuntimeClasses, nodes Ready
// again after the containerd restart.
package katadeploy

import (
	"fmt"
	"strconv"
	"strings"

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

// Values are the chart values kwc installs with: only the configured shims, each a
// RuntimeClass with its overhead, no snapshotter set-up (nydus installs a host systemd
// unit that nothing here uses), debug classes only on request.
func Values(k config.Kata) (map[string]any, error) {
	v, err := kataversion.Parse(k.Version)
	if err != nil {
		return nil, err
	}
	if len(k.Shims) == 0 {
		return nil, fmt.Errorf("no shims to install")
	}
	if !v.AtLeast(structuredSince) {
		return map[string]any{
			"k8sDistribution": "k8s",
			"env": map[string]any{
				"shims":                     strings.Join(k.Shims, " "),
				"defaultShim":               k.Shims[0],
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
		"k8sDistribution": "k8s",
		"shims":           shims,
		"defaultShim":     map[string]any{"amd64": k.Shims[0]},
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

// InstanceLabel is the per-instance node label kata-deploy 4.1 adds besides
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

// VersionAnnotation is where kata-deploy (4.1.0) records the Kata version on each
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
