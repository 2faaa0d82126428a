package localregistry

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestPushAndReadBack(t *testing.T) {
	r, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.Host(), "127.0.0.1:") {
		t.Fatalf("the registry must listen on loopback only, got %s", r.Host())
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Push(context.Background(), "kwc/test:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	back, err := r.Image(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, _ := back.Digest()
	if want != got {
		t.Fatalf("digest %s read back as %s", want, got)
	}
}
