package kubeworkspace

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/kube/katadeploy"
)

// A real kube-apiserver judges every lane's objects: validation, defaulting, the
// RuntimeClass admission that adds pod overhead, and the quota admission that counts it.
func TestEveryLaneIsAcceptedByARealAPIServer(t *testing.T) {
	ctx, _, admin := kubeapitest.ForTest(t)
	cfg, err := config.Load("", config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range katadeploy.RuntimeClassObjects(cfg.Kata) {
		if err := admin.Resources().Create(ctx, &rc); err != nil {
			t.Fatalf("RuntimeClass %s: %v", rc.Name, err)
		}
	}
	for _, l := range append(cfg.Lanes, cfg.KataLanes()...) {
		objs, err := Build(Options{RunID: "api", Lane: l, Image: "127.0.0.1/kwc/workspace:dev", ImageStore: cfg.Kata.ImageStore, ContainerdSocket: "/run/containerd/containerd.sock"})
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		if err := create(ctx, admin, objs); err != nil {
			t.Errorf("lane %s: the API server refused it: %v", l.Name, err)
			continue
		}
		var got corev1.Pod
		if err := admin.Resources().Get(ctx, objs.Pod.Name, objs.Pod.Namespace, &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.RuntimeClassName != nil && got.Spec.Overhead.Memory().IsZero() {
			t.Errorf("lane %s: RuntimeClass admission did not set the pod overhead", l.Name)
		}
	}
}

// The negative control: a quota of exactly the container limits refuses a Kata pod,
// because the RuntimeClass overhead counts against it. Without this, the test above
// could pass for any quota.
func TestAQuotaWithoutOverheadRoomIsRefused(t *testing.T) {
	ctx, _, admin := kubeapitest.ForTest(t)
	k := config.Kata{Version: "4.1.0", Shims: []string{"qemu"}}
	for _, rc := range katadeploy.RuntimeClassObjects(k) {
		if err := admin.Resources().Create(ctx, &rc); err != nil {
			t.Fatal(err)
		}
	}
	l := config.Lane{Name: "tight", Role: config.RoleSubject, Runtime: "kata-qemu"}
	l.Default()
	objs, err := Build(Options{RunID: "api", Lane: l, Image: "x", ImageStore: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	lim := objs.Pod.Spec.Containers[0].Resources.Limits
	for _, r := range []corev1.ResourceName{corev1.ResourceLimitsMemory, corev1.ResourceRequestsMemory} {
		objs.ResourceQuota.Spec.Hard[r] = lim[corev1.ResourceMemory]
	}
	objs.ResourceQuota.Spec.Hard[corev1.ResourceLimitsCPU] = resource.MustParse("2")
	err = create(ctx, admin, objs)
	if err == nil || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("a quota without room for the overhead must refuse the pod, got %v", err)
	}
}

func create(ctx context.Context, c klient.Client, o Objects) error {
	objs := []client.Object{o.Namespace, o.ServiceAccount, o.ResourceQuota}
	if o.NetworkPolicy != nil {
		objs = append(objs, o.NetworkPolicy)
	}
	objs = append(objs, o.Pod)
	for _, obj := range objs {
		if err := c.Resources().Create(ctx, obj); err != nil {
			return err
		}
		// The quota controller does not run here: quota admission needs the quota's
		// status to know what is used, so set it as the controller would.
		if q, ok := obj.(*corev1.ResourceQuota); ok {
			q.Status.Hard = q.Spec.Hard
			q.Status.Used = corev1.ResourceList{}
			for k := range q.Spec.Hard {
				q.Status.Used[k] = resource.MustParse("0")
			}
			if err := c.Resources().UpdateStatus(ctx, q); err != nil {
				return err
			}
		}
	}
	return nil
}
