// Package imagepush puts the run's images where a cluster's nodes can pull them: an
// image from the local engine (saved, then read with go-containerregistry) or one made
// in Go, pushed to the registry the user named for the cluster target.
package imagepush

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

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
	p := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
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
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w (can this host reach the registry, and may it push there?)", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(d.String()).String(), nil
}
