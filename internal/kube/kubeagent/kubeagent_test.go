package kubeagent

import (
	"archive/tar"
	"io"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
)

func TestImageHoldsTheAgent(t *testing.T) {
	img, err := Image([]byte("\x7fELF fake"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !slices.Equal(cf.Config.Entrypoint, []string{"/kwc-agent"}) || cf.OS != "linux" {
		t.Fatalf("%+v", cf.Config)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("no kwc-agent in the layer")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "kwc-agent" {
			if h.Mode&0o111 == 0 {
				t.Fatal("kwc-agent is not executable")
			}
			return
		}
	}
}

func TestDaemonSetForARun(t *testing.T) {
	ds, err := DaemonSet(Agent{Namespace: "kwc-r1-agent", Image: "127.0.0.1/kwc/node-agent:r1", RunID: "r1", ContainerdSocket: "/tmp/kwc-local/containerd/containerd.sock"})
	if err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	switch {
	case ds.Namespace != "kwc-r1-agent":
		t.Error("namespace not set")
	case c.Image != "127.0.0.1/kwc/node-agent:r1" || !slices.Equal(c.Command, []string{"/kwc-agent", "hold", "--run", "r1", "--containerd-socket", "/tmp/kwc-local/containerd/containerd.sock"}):
		t.Errorf("image or run id not set: %v %v", c.Image, c.Command)
	case !spec.HostPID || !spec.HostNetwork || !spec.HostIPC || !*c.SecurityContext.Privileged:
		t.Error("the agent must share the node's namespaces, privileged, to plant on the node")
	case ds.Labels["dev.kwc.run"] != "r1":
		t.Error("the run label lets cleanup find it")
	}
	for _, v := range spec.Volumes {
		if v.Name == "containerd" && v.HostPath.Path != "/tmp/kwc-local/containerd" {
			t.Errorf("the containerd volume must be the socket's folder, got %s", v.HostPath.Path)
		}
	}
}

func TestTheAPIServerAcceptsTheAgent(t *testing.T) {
	ctx, _, c := kubeapitest.ForTest(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kwc-r1-agent"}}
	if err := c.Resources().Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ds, err := DaemonSet(Agent{Namespace: ns.Name, Image: "127.0.0.1/kwc/node-agent:r1", RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resources().Create(ctx, ds); err != nil {
		t.Fatalf("the API server refused the node agent: %v", err)
	}
}
