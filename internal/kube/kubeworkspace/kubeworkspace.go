// Package kubeworkspace builds a lane's workspace as the Kubernetes objects GitLab
// generates for a workspace: its own namespace, a ServiceAccount without a token, the
// pod (uid 5001, fsGroup 0, allowPrivilegeEscalation, the RuntimeClass), a
// NetworkPolicy and a ResourceQuota that leaves room for the RuntimeClass overhead.
// Objects are client-go types, so the API server's own validation can judge them.
package kubeworkspace

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/katadeploy"
	"kwc.dev/kwc/internal/target"
)

// GitLab's workspace identity and layout.
const (
	UID            = 5001
	ProxyNamespace = "gitlab-workspaces"
	ProxyApp       = "gitlab-workspaces-proxy"
	DataVolume     = "gl-workspace-data"
	DataPath       = "/projects"
	ContainerName  = "workspace"
	ServiceAccount = "workspace"
)

// Options are what a lane's workspace needs beyond the lane.
type Options struct {
	RunID string
	Lane  config.Lane
	Image string
	// ImageStore is memory or disk: the emptyDir behind /var/lib/docker and
	// /var/lib/containers, never the (virtio-fs) root.
	ImageStore string
	// Limits are the workspace container's limits (requests are a quarter).
	CPU, Memory string
	// ContainerdSocket is the node's containerd socket, for engine-socket mounts.
	ContainerdSocket string
	// Overhead is the RuntimeClass's pod overhead, which counts against the quota; nil
	// means kata-deploy's published overhead for a kata-<shim> class (the plan, before
	// any cluster exists).
	Overhead corev1.ResourceList
}

// Objects are a workspace's objects, in creation order.
type Objects struct {
	Namespace      *corev1.Namespace
	ServiceAccount *corev1.ServiceAccount
	ResourceQuota  *corev1.ResourceQuota
	NetworkPolicy  *networkingv1.NetworkPolicy // nil for host-network lanes
	Pod            *corev1.Pod
}

// Namespace is the lane's namespace name.
func Namespace(runID, lane string) string { return "kwc-" + runID + "-" + lane }

// Build builds the objects of o's lane.
func Build(o Options) (Objects, error) {
	if o.CPU == "" {
		o.CPU = "2"
	}
	if o.Memory == "" {
		o.Memory = "4Gi"
	}
	cpu, err := resource.ParseQuantity(o.CPU)
	if err != nil {
		return Objects{}, fmt.Errorf("cpu %q: %w", o.CPU, err)
	}
	mem, err := resource.ParseQuantity(o.Memory)
	if err != nil {
		return Objects{}, fmt.Errorf("memory %q: %w", o.Memory, err)
	}
	l := o.Lane
	ns := Namespace(o.RunID, l.Name)
	labels := map[string]string{target.LabelRun: o.RunID, target.LabelLane: l.Name}
	podLabels := map[string]string{"app.kubernetes.io/name": "kwc-workspace", target.LabelRun: o.RunID, target.LabelLane: l.Name}
	no := false
	uid := int64(UID)
	fsGroup := int64(0)
	onRootMismatch := corev1.FSGroupChangeOnRootMismatch

	storeMedium := corev1.StorageMediumDefault
	if o.ImageStore == "memory" {
		storeMedium = corev1.StorageMediumMemory
	}
	volumes := []corev1.Volume{
		{Name: DataVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "docker-store", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: storeMedium}}},
		{Name: "containers-store", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: storeMedium}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: DataVolume, MountPath: DataPath},
		{Name: "docker-store", MountPath: "/var/lib/docker"},
		{Name: "containers-store", MountPath: "/var/lib/containers"},
	}
	for i, m := range l.Mounts {
		name := fmt.Sprintf("lane-mount-%d", i)
		src, typ := m.Source, corev1.HostPathDirectory
		if m.Type == config.MountEngineSocket || m.Type == config.MountEngineSocketDir {
			if o.ContainerdSocket == "" {
				return Objects{}, fmt.Errorf("lane %s: an %s mount needs the node's containerd socket path", l.Name, m.Type)
			}
			src, typ = o.ContainerdSocket, corev1.HostPathSocket
			if m.Type == config.MountEngineSocketDir {
				src, typ = path.Dir(o.ContainerdSocket), corev1.HostPathDirectory
			}
		}
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: src, Type: &typ}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: m.Target, ReadOnly: m.ReadOnly})
	}

	if l.RunAsUser != nil {
		uid = *l.RunAsUser
	}
	// GitLab's allow_privilege_escalation defaults to true, and so does a lane.
	escalate := l.AllowPrivilegeEscalation == nil || *l.AllowPrivilegeEscalation
	if l.ReadOnlyRootFilesystem {
		// Scratch where a read-only workspace still needs to write, in memory.
		for i, dir := range []string{"/tmp", "/run", "/var/tmp"} {
			name := fmt.Sprintf("scratch-%d", i)
			volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
			mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: dir})
		}
	}
	image := o.Image
	if l.Image != "" {
		image = l.Image
	}
	container := corev1.Container{
		Name:            ContainerName,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sleep", "infinity"},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &escalate,
			Privileged:               &l.Privileged,
			RunAsNonRoot:             ptr.To(uid != 0),
			RunAsUser:                &uid,
			RunAsGroup:               l.RunAsGroup,
			ReadOnlyRootFilesystem:   ptr.To(l.ReadOnlyRootFilesystem),
			Capabilities:             capabilities(l.Capabilities),
			SeccompProfile:           seccompProfile(l.Seccomp, l.SeccompProfile),
			AppArmorProfile:          appArmorProfile(l.AppArmor),
		},
		VolumeMounts: mounts,
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem},
			Requests: corev1.ResourceList{corev1.ResourceCPU: quarter(cpu), corev1.ResourceMemory: quarter(mem)},
		},
	}
	if len(l.Devices) > 0 {
		return Objects{}, fmt.Errorf("lane %s: devices %v: Kubernetes pods get devices through device plugins or privileged, not a device list", l.Name, l.Devices)
	}
	for k, v := range l.Labels {
		if _, own := podLabels[k]; !own {
			podLabels[k] = v
		}
	}
	var sysctls []corev1.Sysctl
	for _, k := range slices.Sorted(maps.Keys(l.Sysctls)) {
		sysctls = append(sysctls, corev1.Sysctl{Name: k, Value: l.Sysctls[k]})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: ns, Labels: podLabels, Annotations: l.Annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName:           ServiceAccount,
			AutomountServiceAccountToken: &no,
			HostPID:                      l.HostPID,
			HostIPC:                      l.HostIPC,
			HostNetwork:                  l.Network == config.NetworkHost,
			HostUsers:                    l.HostUsers,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:        ptr.To(uid != 0),
				RunAsUser:           &uid,
				RunAsGroup:          l.RunAsGroup,
				FSGroup:             &fsGroup,
				FSGroupChangePolicy: &onRootMismatch,
				Sysctls:             sysctls,
			},
			Containers:    []corev1.Container{container},
			Volumes:       volumes,
			RestartPolicy: corev1.RestartPolicyNever,
			// sleep as PID 1 ignores SIGTERM: without this every lane's teardown waits
			// out the default 30 s. Nothing in a test workspace needs a clean shutdown.
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			// kwc's workspace never needs a cluster address; a test that leaks one fails
			// the network rule, so DNS is the only egress (below).
			EnableServiceLinks: &no,
		},
	}
	if l.Runtime != "" && l.Runtime != "default" {
		rc := l.Runtime
		pod.Spec.RuntimeClassName = &rc
	}

	// The quota holds the workspace plus the RuntimeClass overhead: pod overhead counts
	// against quota, so a quota of exactly the limits would refuse the pod under Kata.
	qMem, qCPU := mem.DeepCopy(), cpu.DeepCopy()
	switch {
	case o.Overhead != nil:
		qMem.Add(o.Overhead[corev1.ResourceMemory])
		qCPU.Add(o.Overhead[corev1.ResourceCPU])
	case pod.Spec.RuntimeClassName != nil && strings.HasPrefix(l.Runtime, "kata-"):
		m, c := katadeploy.Overhead(strings.TrimPrefix(l.Runtime, "kata-"))
		qMem.Add(resource.MustParse(m))
		qCPU.Add(resource.MustParse(c))
	}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: ns, Labels: labels},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceLimitsCPU: qCPU, corev1.ResourceLimitsMemory: qMem,
			corev1.ResourceRequestsCPU: qCPU, corev1.ResourceRequestsMemory: qMem,
			corev1.ResourcePods: resource.MustParse("1"),
		}},
	}
	nsLabels := maps.Clone(labels)
	if l.PodSecurity != "" {
		// The level Pod Security admission enforces on the workspace's namespace, as a
		// platform team labels workspace namespaces.
		nsLabels["pod-security.kubernetes.io/enforce"] = l.PodSecurity
	}
	objs := Objects{
		Namespace:      &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels}},
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ServiceAccount, Namespace: ns, Labels: labels}, AutomountServiceAccountToken: &no},
		ResourceQuota:  quota,
		Pod:            pod,
	}
	if !pod.Spec.HostNetwork {
		objs.NetworkPolicy = networkPolicy(ns, labels, podLabels)
	}
	return objs, nil
}

// networkPolicy is GitLab's: ingress only from the workspaces proxy, egress only to
// cluster DNS (kwc configures no further egress).
func networkPolicy(ns string, labels, podLabels map[string]string) *networkingv1.NetworkPolicy {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace", Namespace: ns, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": podLabels["app.kubernetes.io/name"]}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ProxyNamespace}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": ProxyApp}},
			}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
			}},
		},
	}
}

func quarter(q resource.Quantity) resource.Quantity {
	return *resource.NewMilliQuantity(q.MilliValue()/4, q.Format)
}

// capabilities is the lane's capability change as Kubernetes takes it (nil: none).
func capabilities(c config.Capabilities) *corev1.Capabilities {
	if len(c.Add) == 0 && len(c.Drop) == 0 {
		return nil
	}
	out := &corev1.Capabilities{}
	for _, a := range c.Add {
		out.Add = append(out.Add, corev1.Capability(a))
	}
	for _, d := range c.Drop {
		out.Drop = append(out.Drop, corev1.Capability(d))
	}
	return out
}

// seccompProfile is the lane's seccomp profile; nil (the runtime's and kubelet's
// default, as GitLab's pods leave it) unless the lane names one.
func seccompProfile(s config.Seccomp, localhost string) *corev1.SeccompProfile {
	switch s {
	case config.SeccompUnconfined:
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	case config.SeccompRuntimeDefault:
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	case config.SeccompLocalhost:
		return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To(localhost)}
	}
	return nil
}

// appArmorProfile is the lane's AppArmor profile; nil leaves the runtime's default.
func appArmorProfile(a string) *corev1.AppArmorProfile {
	switch {
	case a == "Unconfined":
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	case a == "RuntimeDefault":
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}
	case strings.HasPrefix(a, "Localhost/"):
		return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptr.To(strings.TrimPrefix(a, "Localhost/"))}
	}
	return nil
}
