// Package kubeagent deploys the node agent on the Kubernetes targets: its image, made
// in Go from the static kwc-agent binary (no Dockerfile, no engine), and its
// DaemonSet, decoded from fixtures/manifests with e2e-framework's decoder and mutated
// for the run.
package kubeagent

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"

	"kwc.dev/kwc/fixtures"
	"kwc.dev/kwc/internal/images/baseimage"
)

// Image is the agent's image: base (busybox, for the tar and timeout that exec and
// copy use, as in any pod) plus one layer holding /kwc-agent.
func Image(agent []byte, base v1.Image) (v1.Image, error) {
	if base == nil {
		base = empty.Image
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "kwc-agent", Mode: 0o755, Size: int64(len(agent)), ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(agent); err != nil {
		return nil, err
	}
	for _, d := range []string{"tmp", "var", "var/lib", "var/lib/kwc-canary"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		return nil, fmt.Errorf("agent layer: %w", err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	return baseimage.WithEntrypoint(img, []string{"/kwc-agent"}, "node-agent")
}

// Agent says where and how the agent runs.
type Agent struct {
	Namespace, Image, RunID string
	// ContainerdSocket is containerd's socket on the nodes; its folder is mounted at
	// the same path, so the agent can record containerd's identity.
	ContainerdSocket string
	// ProbeTimeout caps each escape probe (config probes.timeout); 0 keeps the agent's.
	ProbeTimeout time.Duration
}

// DaemonSet is the agent's DaemonSet for a run: namespace, image, run id and the
// containerd socket's folder set.
func DaemonSet(a Agent) (*appsv1.DaemonSet, error) {
	if a.ContainerdSocket == "" {
		a.ContainerdSocket = "/run/containerd/containerd.sock"
	}
	sockDir := path.Dir(a.ContainerdSocket)
	ds := &appsv1.DaemonSet{}
	err := decoder.DecodeFile(fixtures.Manifests(), "node-agent.yaml", ds,
		decoder.MutateNamespace(a.Namespace),
		decoder.MutateLabels(map[string]string{"dev.kwc.run": a.RunID}),
		decoder.MutateOption(func(obj k8s.Object) error {
			d := obj.(*appsv1.DaemonSet)
			spec := &d.Spec.Template.Spec
			c := &spec.Containers[0]
			c.Image = a.Image
			for i, arg := range c.Command {
				switch arg {
				case "RUN":
					c.Command[i] = a.RunID
				case "CONTAINERD_SOCKET":
					c.Command[i] = a.ContainerdSocket
				}
			}
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].Name == "containerd" {
					c.VolumeMounts[i].MountPath = sockDir
				}
			}
			for i := range spec.Volumes {
				if spec.Volumes[i].Name == "containerd" {
					spec.Volumes[i].HostPath.Path = sockDir
				}
			}
			if a.ProbeTimeout > 0 {
				c.Command = append(c.Command, "--probe-timeout", a.ProbeTimeout.String())
			}
			d.Spec.Template.Labels["dev.kwc.run"] = a.RunID
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("decoding the node agent DaemonSet: %w", err)
	}
	return ds, nil
}
