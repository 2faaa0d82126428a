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
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"

	"kwc.dev/kwc/fixtures"
)

// Image is the agent's image: one layer holding /kwc-agent.
func Image(agent []byte) (v1.Image, error) {
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
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/kwc-agent"}
	cf.Config.Labels = map[string]string{"dev.kwc.image": "node-agent"}
	return mutate.ConfigFile(img, cf)
}

// DaemonSet is the agent's DaemonSet for a run: namespace, image and run id set.
func DaemonSet(namespace, image, runID string) (*appsv1.DaemonSet, error) {
	ds := &appsv1.DaemonSet{}
	err := decoder.DecodeFile(fixtures.Manifests(), "node-agent.yaml", ds,
		decoder.MutateNamespace(namespace),
		decoder.MutateLabels(map[string]string{"dev.kwc.run": runID}),
		decoder.MutateOption(func(obj k8s.Object) error {
			d := obj.(*appsv1.DaemonSet)
			c := &d.Spec.Template.Spec.Containers[0]
			c.Image = image
			for i, a := range c.Command {
				if a == "RUN" {
					c.Command[i] = runID
				}
			}
			d.Spec.Template.Labels["dev.kwc.run"] = runID
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("decoding the node agent DaemonSet: %w", err)
	}
	return ds, nil
}
