// Package nodeimage assembles what kwc's offline kind node image holds besides its
// root filesystem: the container images kubeadm starts the control plane from, made in
// Go from binaries kwc builds (no registry can be pulled here), and the archive they
// are imported into the node's containerd from.
package nodeimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kwc.dev/kwc/internal/images/baseimage"
)

// Versions are the tags kubeadm asks for: its Kubernetes version for the control
// plane, and the etcd and pause tags of its constants (kubeadm 1.37: etcd 3.7.0-0,
// pause 3.10.2; kind's containerd config names pause 3.10 as the sandbox image).
type Versions struct {
	Kubernetes string
	Etcd       string
	Pause      []string
}

// Component is one control-plane image: the binary kwc built and the name kubeadm's
// static pods run it by.
type Component struct {
	// Binary is the path of the statically linked binary.
	Binary string
	// Command is the name the static pod's command uses (kube-apiserver, etcd, ...).
	Command string
}

// controlPlane lists the images a kubeadm control plane starts, by repository under
// registry.k8s.io. kube-proxy is not here: kwc's kind config runs without it.
var controlPlane = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// ControlPlaneImages makes registry.k8s.io/<component>:<tag> for each control-plane
// component from its binary (at /usr/local/bin/<command>, on the PATH, as kubeadm's
// manifests call it), on base (busybox-static: a shell for probes and debugging), and
// the pause image under each of its tags.
func ControlPlaneImages(bins map[string]Component, v Versions, base v1.Image) (map[name.Tag]v1.Image, error) {
	if v.Kubernetes == "" || v.Etcd == "" || len(v.Pause) == 0 {
		return nil, fmt.Errorf("control-plane image versions are incomplete: %+v", v)
	}
	out := map[name.Tag]v1.Image{}
	for _, repo := range controlPlane {
		c, ok := bins[repo]
		if !ok {
			return nil, fmt.Errorf("no binary for %s (build it with hack/kube-tools.sh --node)", repo)
		}
		tag := v.Kubernetes
		if repo == "etcd" {
			tag = v.Etcd
		}
		img, err := withBinary(base, c, repo)
		if err != nil {
			return nil, err
		}
		t, err := name.NewTag("registry.k8s.io/" + repo + ":" + tag)
		if err != nil {
			return nil, fmt.Errorf("tag for %s: %w", repo, err)
		}
		out[t] = img
	}
	pause, err := baseimage.WithEntrypoint(base, []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}, "pause")
	if err != nil {
		return nil, err
	}
	for _, tag := range v.Pause {
		t, err := name.NewTag("registry.k8s.io/pause:" + tag)
		if err != nil {
			return nil, fmt.Errorf("pause tag %q: %w", tag, err)
		}
		out[t] = pause
	}
	return out, nil
}

// withBinary adds one layer with the binary at /usr/local/bin/<command> and makes it
// the entrypoint (kubeadm's static pods set their command, so this is for a bare run).
func withBinary(base v1.Image, c Component, what string) (v1.Image, error) {
	if err := mustBeStatic(c.Binary); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(c.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading %s for the %s image: %w", c.Binary, what, err)
	}
	if c.Command == "" || strings.ContainsRune(c.Command, '/') {
		return nil, fmt.Errorf("%s: command name %q is not a plain name", what, c.Command)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/" + c.Command, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		return nil, fmt.Errorf("%s layer: %w", what, err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", what, err)
	}
	img, err = baseimage.WithEntrypoint(img, []string{"/usr/local/bin/" + c.Command}, what)
	if err != nil {
		return nil, err
	}
	// kubeadm's static pods name the command without a path: it must be on the PATH,
	// which on the busybox base lacks /usr/local/bin.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	// The same binary and base always give the same image: the node image's hash
	// depends on its inputs only.
	return mutate.CreatedAt(img, v1.Time{Time: epoch})
}

// mustBeStatic refuses a dynamically linked binary: the busybox base has no libc, and
// the image would fail only when kubeadm starts it, far from its cause.
func mustBeStatic(p string) error {
	static, err := baseimage.Static(p)
	if err != nil {
		return err
	}
	if !static {
		return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0 (hack/kube-tools.sh --node does)", p)
	}
	return nil
}

// WriteArchive writes the images as one docker-archive tarball, the form `ctr images
// import` reads, to path.
func WriteArchive(path string, images map[name.Tag]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for t, img := range images {
		refs[t] = img
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path + ".partial")
	if err != nil {
		return err
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		f.Close()
		return fmt.Errorf("writing the control-plane image archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".partial", path)
}
