package kubeworkspace

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"kwc.dev/kwc/internal/config"
)

func lane(t *testing.T, name string) config.Lane {
	t.Helper()
	c, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range append(c.Lanes, c.KataLanes()...) {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no lane %s", name)
	return config.Lane{}
}

func build(t *testing.T, l config.Lane) Objects {
	t.Helper()
	o, err := Build(Options{RunID: "r1", Lane: l, Image: "127.0.0.1/kwc/workspace:dev", ImageStore: "memory", ContainerdSocket: "/run/containerd/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// The pod GitLab generates (devfile_resource_modifier.rb): kwc builds the same.
func TestGitLabShape(t *testing.T) {
	o := build(t, lane(t, "kata-qemu-gitlab"))
	p := o.Pod.Spec
	sc, csc := p.SecurityContext, p.Containers[0].SecurityContext
	switch {
	case p.RuntimeClassName == nil || *p.RuntimeClassName != "kata-qemu":
		t.Error("runtimeClassName must be the lane's RuntimeClass")
	case !*sc.RunAsNonRoot || *sc.RunAsUser != 5001 || *sc.FSGroup != 0 || *sc.FSGroupChangePolicy != corev1.FSGroupChangeOnRootMismatch:
		t.Errorf("pod securityContext %+v", sc)
	case !*csc.AllowPrivilegeEscalation || *csc.Privileged || !*csc.RunAsNonRoot || *csc.RunAsUser != 5001:
		t.Errorf("container securityContext %+v", csc)
	case *p.AutomountServiceAccountToken || *o.ServiceAccount.AutomountServiceAccountToken:
		t.Error("no service-account token may be mounted")
	case p.HostPID || p.HostIPC || p.HostNetwork:
		t.Error("a subject lane shares no host namespace")
	case o.NetworkPolicy == nil || len(o.NetworkPolicy.Spec.Egress) != 1:
		t.Error("GitLab's NetworkPolicy is missing")
	}
	var data, store bool
	for _, m := range p.Containers[0].VolumeMounts {
		data = data || m.MountPath == DataPath
		store = store || m.MountPath == "/var/lib/docker"
	}
	if !data || !store {
		t.Error("the data volume at /projects and the image store must be mounted")
	}
	for _, v := range p.Volumes {
		if v.Name == "docker-store" && v.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Error("imageStore memory puts the store in an in-guest memory emptyDir")
		}
	}
}

func TestQuotaLeavesRoomForOverhead(t *testing.T) {
	for name, overhead := range map[string]string{"kata-qemu-gitlab": "320Mi", "kata-clh-gitlab": "130Mi"} {
		o := build(t, lane(t, name))
		limit := o.Pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
		want := limit.DeepCopy()
		want.Add(resource.MustParse(overhead))
		got := o.ResourceQuota.Spec.Hard[corev1.ResourceLimitsMemory]
		if got.Cmp(want) != 0 {
			t.Errorf("%s: quota %s, want limits %s + overhead %s", name, got.String(), limit.String(), overhead)
		}
	}
	runc := build(t, lane(t, "runc-gitlab"))
	if runc.Pod.Spec.RuntimeClassName != nil {
		t.Error("runtime default means no RuntimeClass")
	}
}

func TestShapesAndControls(t *testing.T) {
	priv := build(t, lane(t, "kata-clh-privileged")).Pod.Spec.Containers[0].SecurityContext
	if !*priv.Privileged || *priv.RunAsUser != 5001 {
		t.Errorf("the privileged shape is the GitLab shape with privileged: true: %+v", priv)
	}
	c2 := build(t, lane(t, "c2-host-namespaces"))
	if !c2.Pod.Spec.HostPID || !c2.Pod.Spec.HostIPC || !c2.Pod.Spec.HostNetwork || c2.NetworkPolicy != nil {
		t.Error("C2 shares the host's PID, IPC and network namespaces, with no NetworkPolicy")
	}
	c3 := build(t, lane(t, "c3-host-path")).Pod.Spec
	var root, sock bool
	for _, v := range c3.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/" {
			root = true
		}
		if v.HostPath != nil && *v.HostPath.Type == corev1.HostPathSocket {
			sock = true
		}
	}
	if !root || !sock {
		t.Error("C3 mounts the node's / and its containerd socket")
	}
}

func TestObjectsRoundTripStrictly(t *testing.T) {
	o := build(t, lane(t, "kata-qemu-privileged"))
	b, err := yaml.Marshal(o.Pod)
	if err != nil {
		t.Fatal(err)
	}
	var back corev1.Pod
	if err := yaml.UnmarshalStrict(b, &back); err != nil {
		t.Fatalf("the pod does not decode strictly into its own type: %v", err)
	}
}

func TestDevicesAreRefused(t *testing.T) {
	l := lane(t, "runc-gitlab")
	l.Devices = []string{"/dev/kvm"}
	if _, err := Build(Options{RunID: "r", Lane: l}); err == nil {
		t.Fatal("a device list has no pod equivalent")
	}
}

// A lane's capabilities and seccomp profile reach the container's securityContext;
// a lane that names no profile leaves it to the runtime, as GitLab's pods do.
func TestCapabilitiesAndSeccompReachThePod(t *testing.T) {
	l := lane(t, "kata-qemu-gitlab")
	if c := build(t, l).Pod.Spec.Containers[0].SecurityContext; c.Capabilities != nil || c.SeccompProfile != nil {
		t.Fatalf("GitLab's shape sets no capabilities or seccomp profile: %+v", c)
	}
	l.Capabilities = config.Capabilities{Add: []string{"DAC_READ_SEARCH"}}
	l.Seccomp = config.SeccompUnconfined
	c := build(t, l).Pod.Spec.Containers[0].SecurityContext
	if c.Capabilities == nil || len(c.Capabilities.Add) != 1 || c.Capabilities.Add[0] != "DAC_READ_SEARCH" || c.SeccompProfile == nil || c.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Fatalf("%+v", c)
	}
}

// Issue 11: the lane options that describe real workspace pods reach the pod and its
// namespace as the lane says them.
func TestLaneSecurityOptionsReachThePod(t *testing.T) {
	no, uid := false, int64(0)
	l := config.Lane{Name: "hardened", Role: config.RoleSubject, Runtime: "kata-qemu",
		Seccomp: config.SeccompLocalhost, SeccompProfile: "profiles/ws.json", AppArmor: "Unconfined",
		AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: true, RunAsUser: &uid, HostUsers: &no,
		Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}, Annotations: map[string]string{"io.katacontainers.config.hypervisor.kernel_params": "x"},
		Labels: map[string]string{"team": "dev"}, PodSecurity: "baseline", Image: "127.0.0.1/own/ws:1"}
	l.Default()
	objs, err := Build(Options{RunID: "abcdef", Lane: l, Image: "127.0.0.1/kwc/workspace:x"})
	if err != nil {
		t.Fatal(err)
	}
	pod, c := objs.Pod, objs.Pod.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case *sc.AllowPrivilegeEscalation, !*sc.ReadOnlyRootFilesystem, *sc.RunAsNonRoot, *sc.RunAsUser != 0:
		t.Errorf("security context %+v", sc)
	case sc.SeccompProfile == nil || *sc.SeccompProfile.LocalhostProfile != "profiles/ws.json":
		t.Errorf("seccomp %+v", sc.SeccompProfile)
	case sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != "Unconfined":
		t.Errorf("apparmor %+v", sc.AppArmorProfile)
	case pod.Spec.HostUsers == nil || *pod.Spec.HostUsers:
		t.Error("hostUsers false did not reach the pod")
	case len(pod.Spec.SecurityContext.Sysctls) != 1, pod.Annotations["io.katacontainers.config.hypervisor.kernel_params"] != "x":
		t.Errorf("sysctls %v annotations %v", pod.Spec.SecurityContext.Sysctls, pod.Annotations)
	case pod.Labels["team"] != "dev" || pod.Labels["app.kubernetes.io/name"] != "kwc-workspace":
		t.Errorf("labels %v", pod.Labels)
	case objs.Namespace.Labels["pod-security.kubernetes.io/enforce"] != "baseline":
		t.Errorf("namespace labels %v", objs.Namespace.Labels)
	case c.Image != "127.0.0.1/own/ws:1":
		t.Errorf("image %s", c.Image)
	}
	scratch := 0
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/tmp" || m.MountPath == "/run" || m.MountPath == "/var/tmp" {
			scratch++
		}
	}
	if scratch != 3 {
		t.Errorf("a read-only root needs scratch at /tmp, /run, /var/tmp: %v", c.VolumeMounts)
	}
}
