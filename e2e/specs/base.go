package specs

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/images/baseimage"
	"kwc.dev/kwc/internal/images/localregistry"
)

// PrepareFixtureBase makes the busybox base in Go, pushes it to the registry and reads
// it back from there, so what the workspaces build on came through a registry.
func PrepareFixtureBase(ctx context.Context, reg *localregistry.Registry, busybox string) (framework.FixtureBase, error) {
	img, err := baseimage.Busybox(busybox)
	if err != nil {
		return framework.FixtureBase{}, err
	}
	d, err := reg.Push(ctx, "kwc/fixture-base:v1", img)
	if err != nil {
		return framework.FixtureBase{}, err
	}
	back, err := reg.Image(ctx, d)
	if err != nil {
		return framework.FixtureBase{}, err
	}
	layers, err := back.Layers()
	if err != nil {
		return framework.FixtureBase{}, fmt.Errorf("reading the base's layers: %w", err)
	}
	ref := reg.Host() + "/kwc/fixture-base:v1"
	arch, err := archiveOf(back, ref)
	if err != nil {
		return framework.FixtureBase{}, err
	}
	return framework.FixtureBase{Ref: ref, Digest: d.DigestStr(), Archive: arch, Layers: len(layers)}, nil
}

func parseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parsing %s: %w", ref, err)
	}
	return t, nil
}
