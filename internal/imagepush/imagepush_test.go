package imagepush

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"kwc.dev/kwc/internal/localregistry"
)

func TestPushReturnsTheDigestTheRegistryServes(t *testing.T) {
	r, err := localregistry.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
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
