// Package localregistry serves an in-process OCI registry on 127.0.0.1, so fixture
// bases and built images travel through a real registry protocol without any network.
package localregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running in-process registry.
type Registry struct {
	srv  *http.Server
	host string
}

// Start listens on a free 127.0.0.1 port.
func Start() (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the in-process registry on 127.0.0.1: %w", err)
	}
	r := &Registry{
		srv:  &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second},
		host: ln.Addr().String(),
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("in-process registry stopped: %v", err)
		}
	}()
	return r, nil
}

// Connect uses a registry another process of the same run serves at host (Ginkgo's
// parallel processes share process 1's); Close leaves it running.
func Connect(host string) *Registry { return &Registry{host: host} }

// Host is 127.0.0.1:<port>.
func (r *Registry) Host() string { return r.host }

// Ref names repo:tag in this registry.
func (r *Registry) Ref(repoTag string) (name.Reference, error) {
	ref, err := name.ParseReference(r.host+"/"+repoTag, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("reference %s/%s: %w", r.host, repoTag, err)
	}
	return ref, nil
}

// Push writes img as repo:tag and returns the pushed reference with its digest.
func (r *Registry) Push(ctx context.Context, repoTag string, img v1.Image) (name.Digest, error) {
	ref, err := r.Ref(repoTag)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("digest of %s: %w", ref, err)
	}
	return ref.Context().Digest(d.String()), nil
}

// Image reads repo:tag (or a digest reference) back from the registry.
func (r *Registry) Image(ctx context.Context, ref name.Reference) (v1.Image, error) {
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading %s back from the registry: %w", ref, err)
	}
	return img, nil
}

// Close stops serving (a registry this process only connected to stays up).
func (r *Registry) Close() error {
	if r.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.srv.Shutdown(ctx)
}
