package nodeimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kwc.dev/kwc/internal/images/baseimage"
)

var versions = Versions{Kubernetes: "v1.37.2", Etcd: "3.7.0-0", Pause: []string{"3.10", "3.10.2"}}

// staticBinary is a statically linked ELF the test can stand in for a Kubernetes
// binary: Debian's busybox-static, which make deps installs.
func staticBinary(t *testing.T) string {
	t.Helper()
	if static, err := baseimage.Static(baseimage.DefaultBusybox); err != nil || !static {
		t.Fatalf("%s is not a static binary (install busybox-static): %v", baseimage.DefaultBusybox, err)
	}
	return baseimage.DefaultBusybox
}

func components(bin string) map[string]Component {
	out := map[string]Component{}
	for _, c := range controlPlane {
		out[c] = Component{Binary: bin, Command: c}
	}
	return out
}

func base(t *testing.T) v1.Image {
	t.Helper()
	img, err := baseimage.Busybox(baseimage.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Every image kubeadm's control plane asks for is there, under the tag it asks for,
// with the binary where its static pod's command finds it.
func TestControlPlaneImagesAreWhatKubeadmAsksFor(t *testing.T) {
	bin := staticBinary(t)
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := ControlPlaneImages(components(bin), versions, base(t))
	if err != nil {
		t.Fatal(err)
	}
	wantTags := []string{
		"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2",
		"registry.k8s.io/kube-scheduler:v1.37.2", "registry.k8s.io/etcd:3.7.0-0",
		"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.2",
	}
	if len(imgs) != len(wantTags) {
		t.Errorf("%d images, want %d", len(imgs), len(wantTags))
	}
	for _, s := range wantTags {
		tag, _ := name.NewTag(s)
		img, ok := imgs[tag]
		if !ok {
			t.Errorf("no image %s", s)
			continue
		}
		repo := tag.RepositoryStr()
		if repo == "pause" {
			continue
		}
		cmd := filepath.Base(repo)
		got := fileIn(t, img, "usr/local/bin/"+cmd)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: /usr/local/bin/%s is not the binary given (%d bytes)", s, cmd, len(got))
		}
		cf, _ := img.ConfigFile()
		if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/usr/local/bin/"+cmd {
			t.Errorf("%s: entrypoint %v", s, cf.Config.Entrypoint)
		}
		if !slices.Contains(cf.Config.Env, "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
			t.Errorf("%s: /usr/local/bin is not on the PATH (%v): kubeadm's static pods name %s without a path", s, cf.Config.Env, cmd)
		}
		if fileIn(t, img, "bin/sh") == nil {
			t.Errorf("%s: no shell from the base", s)
		}
	}
}

// The same inputs make the same images, so the node image's hash says what it holds.
func TestControlPlaneImagesAreReproducible(t *testing.T) {
	bin := staticBinary(t)
	a, err := ControlPlaneImages(components(bin), versions, base(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ControlPlaneImages(components(bin), versions, base(t))
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range a {
		da, _ := img.Digest()
		db, _ := b[tag].Digest()
		if da != db {
			t.Errorf("%s: %s then %s", tag, da, db)
		}
	}
}

func TestControlPlaneImagesRefuseWhatWouldFailInTheNode(t *testing.T) {
	bin := staticBinary(t)
	missing := components(bin)
	delete(missing, "etcd")
	if _, err := ControlPlaneImages(missing, versions, base(t)); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("a missing etcd binary: %v", err)
	}
	dynamic := components(bin)
	dynamic["kube-scheduler"] = Component{Binary: "/bin/ls", Command: "kube-scheduler"}
	if _, err := ControlPlaneImages(dynamic, versions, base(t)); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a dynamically linked binary on a base without libc: %v", err)
	}
	if _, err := ControlPlaneImages(components(bin), Versions{Kubernetes: "v1.37.2"}, base(t)); err == nil {
		t.Error("versions without etcd and pause were accepted")
	}
	bad := components(bin)
	bad["etcd"] = Component{Binary: bin, Command: "../etcd"}
	if _, err := ControlPlaneImages(bad, versions, base(t)); err == nil {
		t.Error("a command name with a path was accepted")
	}
}

// The archive holds every image under its tag, readable as ctr and docker load read it.
func TestArchiveHoldsEveryTag(t *testing.T) {
	imgs, err := ControlPlaneImages(components(staticBinary(t)), versions, base(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "images", "control-plane.tar")
	if err := WriteArchive(p, imgs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial archive was left: %v", err)
	}
	for tag, want := range imgs {
		got, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Errorf("%s is not in the archive: %v", tag, err)
			continue
		}
		dw, _ := want.ConfigName()
		dg, _ := got.ConfigName()
		if dw != dg {
			t.Errorf("%s: config %s in the archive, want %s", tag, dg, dw)
		}
	}
}

// fileIn is the content of path in the image's flattened filesystem, or nil.
func fileIn(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") != path {
			continue
		}
		if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
			return []byte(h.Linkname)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}
