package annotationcheck

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/escape/verdict"
)

// Every combination of configuration and guest command line; the misconfigured one is
// the check's control (it must say reached).
func TestJudge(t *testing.T) {
	with := "console=hvc0 quiet kwc_canary=r1 init=/usr/lib/systemd/systemd"
	without := "console=hvc0 quiet init=/usr/lib/systemd/systemd"
	for _, c := range []struct {
		name    string
		allowed bool
		o       Outcome
		want    verdict.Result
	}{
		{"enforced", false, Outcome{Cmdline: without}, verdict.Blocked},
		{"refused by the runtime", false, Outcome{StartError: "annotation kernel_params is not enabled"}, verdict.Blocked},
		{"allowed and present (the control)", true, Outcome{Cmdline: with}, verdict.Reached},
		{"enforcement broken", false, Outcome{Cmdline: with}, verdict.Reached},
		{"allowed but absent: blind", true, Outcome{Cmdline: without}, verdict.Error},
		{"a prefix is not the canary", false, Outcome{Cmdline: "kwc_canary=r10"}, verdict.Blocked},
		{"never read", false, Outcome{}, verdict.Error},
		{"a pod that failed for another reason proves nothing", false, Outcome{StartError: "ErrImagePull"}, verdict.Error},
	} {
		f := Judge("r1", c.allowed, []string{"why"}, c.o)
		if f.Result != c.want || f.Reason == "" || len(f.Techniques) == 0 {
			t.Errorf("%s: %s (%s), want %s", c.name, f.Result, f.Reason, c.want)
		}
	}
}

// The admin-created pod is a valid pod with its RuntimeClass: the API server accepts it.
func TestTheAPIServerAcceptsThePod(t *testing.T) {
	ctx, _, c := kubeapitest.ForTest(t)
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata-qemu"}, Handler: "kata-qemu"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kwc-r1-kata-qemu-gitlab-ann"}}
	if err := c.Resources().Create(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if err := c.Resources().Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	if err := c.Resources().Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	p := Pod(ns.Name, "kata-qemu", "127.0.0.1/kwc/workspace:dev", "r1")
	if err := c.Resources().Create(ctx, p); err != nil {
		t.Fatalf("the API server refused the annotated pod: %v", err)
	}
	if p.Annotations[Annotation] != "kwc_canary=r1" || *p.Spec.RuntimeClassName != "kata-qemu" {
		t.Fatalf("%+v", p.ObjectMeta)
	}
}
