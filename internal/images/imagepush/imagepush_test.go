package imagepush

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"kwc.dev/kwc/internal/images/localregistry"
)

func TestPushReturnsTheDigestTheRegistryServes(t *testing.T) {
	r, img := registryAndImage(t)
	pinned, err := Push(t.Context(), img, r.Host()+"/kwc/workspace:t1", Insecure(r.Host(), false))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Ref("kwc/workspace:t1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Image(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := got.Digest()
	if pinned != r.Host()+"/kwc/workspace@"+d.String() {
		t.Fatalf("pinned %s, registry serves %s", pinned, d)
	}
}

// registryAndImage starts an in-process registry for the test and makes a small image.
func registryAndImage(t *testing.T) (*localregistry.Registry, v1.Image) {
	t.Helper()
	r, err := localregistry.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r, img
}

func TestInsecureOnlyForLoopbackOrWhenAsked(t *testing.T) {
	for reg, want := range map[string]bool{"127.0.0.1:5000": true, "localhost:5000/kwc": true, "registry.example:443": false} {
		if got := Insecure(reg, false); got != want {
			t.Errorf("%s: %v", reg, got)
		}
	}
	if !Insecure("registry.example", true) {
		t.Error("a configured insecure registry is plain HTTP")
	}
}

// Re-compressing keeps what the image is: its layers' content and its config.
func TestFastCompressionKeepsTheImage(t *testing.T) {
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := fastCompression(img)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigFile()
	got, err := fast.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.RootFS.DiffIDs) != 3 {
		t.Fatalf("diff IDs %v", got.RootFS.DiffIDs)
	}
	layers, _ := fast.Layers()
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil || d != want.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d: diff ID %v, config says %v (%v)", i, d, want.RootFS.DiffIDs[i], err)
		}
	}
}
