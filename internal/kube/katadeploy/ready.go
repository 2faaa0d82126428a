package katadeploy

import (
	"fmt"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
)

// State is what the cluster shows while kata-deploy installs.
type State struct {
	DaemonSet      *appsv1.DaemonSet
	Nodes          []corev1.Node
	RuntimeClasses []nodev1.RuntimeClass
}

// nodeLabel is what kata-deploy sets on a node once Kata is installed there.
const nodeLabel = "katacontainers.io/kata-runtime"

// Ready says whether every readiness signal is there, and names what is missing, for
// the progress lines while waiting and the error when waiting ends.
func Ready(s State, classes []string, version string) (bool, []string) {
	var missing []string
	ds := s.DaemonSet
	switch {
	case ds == nil:
		missing = append(missing, "the kata-deploy DaemonSet does not exist yet")
	case ds.Status.DesiredNumberScheduled == 0:
		missing = append(missing, "the kata-deploy DaemonSet schedules no pod (node selector or taints?)")
	case ds.Status.NumberReady < ds.Status.DesiredNumberScheduled:
		missing = append(missing, fmt.Sprintf("kata-deploy pods ready %d/%d (/readyz turns 200 only after the install)", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled))
	}
	instance := InstanceLabel(version)
	for _, n := range s.Nodes {
		if n.Labels[nodeLabel] != "true" {
			missing = append(missing, fmt.Sprintf("node %s: label %s=%q, want true", n.Name, nodeLabel, n.Labels[nodeLabel]))
		}
		if instance != "" && n.Labels[instance] != "true" {
			missing = append(missing, fmt.Sprintf("node %s: no %s=true", n.Name, instance))
		}
		var handlers []string
		for _, h := range n.Status.RuntimeHandlers {
			handlers = append(handlers, h.Name)
		}
		for _, c := range classes {
			if !slices.Contains(handlers, c) {
				missing = append(missing, fmt.Sprintf("node %s: the kubelet lists no runtime handler %s", n.Name, c))
			}
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			missing = append(missing, fmt.Sprintf("node %s is not Ready (containerd restarting?)", n.Name))
		}
		if v := n.Status.NodeInfo.ContainerRuntimeVersion; v == "" || v == "containerd://Unknown" {
			missing = append(missing, fmt.Sprintf("node %s: container runtime %q (a corrupted containerd config shows as Unknown)", n.Name, v))
		}
	}
	if len(s.Nodes) == 0 {
		missing = append(missing, "no node to install on")
	}
	have := map[string]bool{}
	for _, rc := range s.RuntimeClasses {
		have[rc.Name] = rc.Handler == rc.Name
	}
	for _, c := range classes {
		if !have[c] {
			missing = append(missing, "RuntimeClass "+c+" is missing (or its handler differs)")
		}
	}
	sort.Strings(missing)
	return len(missing) == 0, missing
}
