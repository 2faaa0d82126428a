package specs

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"kwc.dev/kwc/internal/baseimage"
	"kwc.dev/kwc/internal/localregistry"
)

// FixtureBase is the fixtures' base as served by the in-process registry and as an
// archive the workspaces load (they may have no network to pull it).
type FixtureBase struct {
	Ref     string
	Digest  string
	Archive []byte
	Layers  int
}

// PrepareFixtureBase makes the busybox base in Go, pushes it to the registry and reads
// it back from there, so what the workspaces build on came through a registry.
func PrepareFixtureBase(ctx context.Context, reg *localregistry.Registry, busybox string) (FixtureBase, error) {
	img, err := baseimage.Busybox(busybox)
	if err != nil {
		return FixtureBase{}, err
	}
	d, err := reg.Push(ctx, "kwc/fixture-base:v1", img)
	if err != nil {
		return FixtureBase{}, err
	}
	back, err := reg.Image(ctx, d)
	if err != nil {
		return FixtureBase{}, err
	}
	layers, err := back.Layers()
	if err != nil {
		return FixtureBase{}, fmt.Errorf("reading the base's layers: %w", err)
	}
	ref := reg.Host() + "/kwc/fixture-base:v1"
	arch, err := archiveOf(back, ref)
	if err != nil {
		return FixtureBase{}, err
	}
	return FixtureBase{Ref: ref, Digest: d.DigestStr(), Archive: arch, Layers: len(layers)}, nil
}

func parseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parsing %s: %w", ref, err)
	}
	return t, nil
}
