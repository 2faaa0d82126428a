// Package imagepush puts the run's images where a cluster's nodes can pull them: an
// image from the local engine (saved, then read with go-containerregistry) or one made
// in Go, pushed to the registry the user named for the cluster target. An engine image
// is compressed once per build and kept as an OCI layout in kwc's cache, and a push the
// registry already holds is a tag, not an upload.
package imagepush

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// FromEngineCached reads an image of the local engine as FromEngine does, compressed
// once per build: the result is kept in cache/images/<ref>/<engine image id>/ as an OCI
// layout, and a later run of the same build reads it from there without saving or
// compressing anything. Older builds of the same ref are removed from the cache when a
// new one is written, so it holds one build per ref.
func FromEngineCached(ctx context.Context, cli *client.Client, ref, cache string) (v1.Image, error) {
	inspect, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s in the engine: %w", ref, err)
	}
	id := strings.TrimPrefix(inspect.ID, "sha256:")
	if id == "" || strings.ContainsAny(id, "/.") {
		return nil, fmt.Errorf("the engine gave %s an id kwc cannot use as a folder name: %q", ref, inspect.ID)
	}
	refDir := filepath.Join(cache, "images", sanitize(ref))
	dir := filepath.Join(refDir, id)
	if img, err := fromLayout(dir); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(refDir, 0o755); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	work, err := os.MkdirTemp(refDir, ".new-")
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	defer os.RemoveAll(work)
	img, err := FromEngine(ctx, cli, ref, work)
	if err != nil {
		return nil, err
	}
	lp, err := layout.Write(filepath.Join(work, "layout"), empty.Index)
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	if err := lp.AppendImage(img); err != nil {
		return nil, fmt.Errorf("writing %s to the image cache: %w", ref, err)
	}
	// Another run may have written the same build meanwhile: either copy is whole.
	if err := os.Rename(filepath.Join(work, "layout"), dir); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	pruneOthers(refDir, id)
	return fromLayout(dir)
}

// fromLayout reads the one image of an OCI layout folder.
func fromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s holds %d images, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// pruneOthers removes the cached builds of a ref other than keep (and work folders a
// killed run left).
func pruneOthers(refDir, keep string) {
	entries, err := os.ReadDir(refDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() != keep {
			_ = os.RemoveAll(filepath.Join(refDir, e.Name()))
		}
	}
}

func sanitize(ref string) string { return strings.NewReplacer("/", "_", ":", "_").Replace(ref) }

// FromEngine reads an image of the local engine (docker save), keeping the archive in
// dir while the image is in use.
func FromEngine(ctx context.Context, cli *client.Client, ref, dir string) (v1.Image, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("image reference %s: %w", ref, err)
	}
	rc, err := cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, fmt.Errorf("saving %s from the engine: %w", ref, err)
	}
	defer rc.Close()
	p := filepath.Join(dir, sanitize(ref)+".tar")
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return nil, fmt.Errorf("saving %s from the engine: %w", ref, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	img, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		return nil, fmt.Errorf("reading the saved %s: %w", ref, err)
	}
	return fastCompression(img)
}

// fastCompression re-wraps an image's layers to be gzipped at the fastest level when
// pushed: the saved layers are uncompressed, and the default level spends most of a
// push on two cores compressing them (same content, same diff IDs, same config).
func fastCompression(img v1.Image) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := empty.Image
	for _, l := range layers {
		fast, err := tarball.LayerFromOpener(l.Uncompressed, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return nil, err
		}
		if out, err = mutate.AppendLayers(out, fast); err != nil {
			return nil, err
		}
	}
	return mutate.ConfigFile(out, cf)
}

// Insecure reports whether a registry is reached over plain HTTP: loopback always
// (as containerd and Docker treat it), others only when the user said so.
func Insecure(registry string, configured bool) bool {
	host := strings.SplitN(registry, "/", 2)[0]
	h := host
	if i := strings.LastIndex(host, ":"); i > 0 {
		h = host[:i]
	}
	return configured || h == "127.0.0.1" || h == "localhost" || h == "[::1]"
}

// Push writes img to ref and returns ref pinned by digest.
func Push(ctx context.Context, img v1.Image, ref string, insecure bool) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("image reference %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	pinned := tag.Context().Digest(d.String())
	// The registry holds this very image already (a kept cluster, a registry that
	// outlives runs): tag it, upload nothing.
	if _, err := remote.Head(pinned, remote.WithContext(ctx)); err == nil {
		if err := remote.Tag(tag, img, remote.WithContext(ctx)); err != nil {
			return "", fmt.Errorf("tagging %s: %w (may this host push to the registry?)", ref, err)
		}
		return pinned.String(), nil
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w (can this host reach the registry, and may it push there?)", ref, err)
	}
	return pinned.String(), nil
}
