package preflight

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeHost(t *testing.T, cpuFlags string, modules []string, devs []string, api int, apiErr error) Host {
	t.Helper()
	root := t.TempDir()
	mk := func(p, body string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu "+cpuFlags+" sse\n")
	for _, m := range modules {
		if err := os.MkdirAll(filepath.Join(root, "/sys/module", m), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devs {
		mk(d, "")
	}
	return Host{Root: root, KVMAPIVersion: func(string) (int, error) { return api, apiErr }}
}

func TestAGoodHostPasses(t *testing.T) {
	h := fakeHost(t, "vmx", []string{"kvm", "kvm_intel"}, []string{"/dev/kvm", "/dev/vhost-vsock", "/dev/vhost-net"}, 12, nil)
	if err := Error(h.KVM(), ""); err != nil {
		t.Fatal(err)
	}
}

// This project's own CI machines: a paravirtual KVM, no vmx/svm, no vhost modules.
func TestAParavirtualSandboxFailsWithEveryFix(t *testing.T) {
	h := fakeHost(t, "hypervisor", []string{"kvm", "kvm_pvm"}, []string{"/dev/kvm"}, 12, nil)
	err := Error(h.KVM(), "Without KVM, run the local slice: make e2e TARGET=docker")
	if err == nil {
		t.Fatal("a paravirtual KVM cannot boot Kata guests")
	}
	msg := err.Error()
	for _, want := range []string{"neither vmx nor svm", "kvm_pvm", "modprobe vhost_vsock", "modprobe vhost_net", "make e2e TARGET=docker"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "/dev/kvm usable") {
		t.Error("/dev/kvm itself answered; it must not be blamed")
	}
}

func TestKVMDeviceProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		api  int
		err  error
		want string
	}{
		"missing":    {0, os.ErrNotExist, "does not exist"},
		"no access":  {0, errors.New("permission denied"), "permission denied"},
		"odd answer": {11, nil, "want 12"},
	} {
		h := fakeHost(t, "svm", []string{"kvm_amd"}, []string{"/dev/vhost-vsock", "/dev/vhost-net"}, tc.api, tc.err)
		err := Error(h.KVM(), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "udev rule") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestThisMachine(t *testing.T) {
	// Whatever the host, the real checks run and each says something.
	for _, c := range System().KVM() {
		if c.Detail == "" || c.Fix == "" {
			t.Errorf("%s: empty detail or fix", c.Name)
		}
	}
}
