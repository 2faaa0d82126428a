package imagepush

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// fakeEngine answers the two calls FromEngineCached makes (inspect, save) for one
// image whose engine id the test sets, and counts the saves.
type fakeEngine struct {
	id    atomic.Value // string
	img   atomic.Value // v1.Image
	saves atomic.Int32
}

func startFakeEngine(t *testing.T, ref string) (*fakeEngine, *client.Client) {
	t.Helper()
	e := &fakeEngine{}
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Header().Set("Api-Version", "1.47")
		case strings.HasSuffix(r.URL.Path, "/json") && strings.Contains(r.URL.Path, "/images/"):
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": e.id.Load().(string)})
		case strings.HasSuffix(r.URL.Path, "/images/get"):
			e.saves.Add(1)
			if err := tarball.Write(tag, e.img.Load().(v1.Image), w); err != nil {
				t.Errorf("fake engine: %v", err)
			}
		default:
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cli, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	return e, cli
}

func (e *fakeEngine) build(t *testing.T, id string) v1.Image {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	e.id.Store("sha256:" + id)
	e.img.Store(img)
	return img
}

// A build is saved and compressed once; later runs of the same build read the cache,
// and a new build replaces the old one in it.
func TestFromEngineCachedSavesEachBuildOnce(t *testing.T) {
	const ref = "127.0.0.1/kwc/workspace:dev"
	e, cli := startFakeEngine(t, ref)
	cache := t.TempDir()
	first := e.build(t, strings.Repeat("a", 64))

	var digests []v1.Hash
	for range 3 {
		img, err := FromEngineCached(t.Context(), cli, ref, cache)
		if err != nil {
			t.Fatal(err)
		}
		sameContent(t, first, img)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if n := e.saves.Load(); n != 1 {
		t.Errorf("the same build was saved from the engine %d times, want once", n)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("the cached image changed between runs: %v", digests)
	}

	second := e.build(t, strings.Repeat("b", 64))
	img, err := FromEngineCached(t.Context(), cli, ref, cache)
	if err != nil {
		t.Fatal(err)
	}
	sameContent(t, second, img)
	if n := e.saves.Load(); n != 2 {
		t.Errorf("a new build was not saved: %d saves", n)
	}
	entries, err := os.ReadDir(filepath.Join(cache, "images", sanitize(ref)))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != strings.Repeat("b", 64) {
		t.Errorf("the cache keeps %v, want only the new build", entries)
	}
}

// An engine id that could walk out of the cache is refused, not used as a path.
func TestFromEngineCachedRefusesAnIDThatIsNoFolderName(t *testing.T) {
	const ref = "127.0.0.1/kwc/workspace:dev"
	e, cli := startFakeEngine(t, ref)
	e.build(t, "../../etc")
	if _, err := FromEngineCached(t.Context(), cli, ref, t.TempDir()); err == nil {
		t.Fatal("an engine id with a path in it was used")
	}
}

// Pushing what the registry already holds uploads nothing and still tags it.
func TestPushOfWhatTheRegistryHoldsOnlyTags(t *testing.T) {
	r, img := registryAndImage(t)
	first, err := Push(t.Context(), img, r.Host()+"/kwc/workspace:run1", true)
	if err != nil {
		t.Fatal(err)
	}
	// A layer the registry cannot read would fail an upload: the second push must not
	// read any.
	again, err := Push(t.Context(), unreadableLayers{img}, r.Host()+"/kwc/workspace:run2", true)
	if err != nil {
		t.Fatalf("pushing an image the registry holds read its layers: %v", err)
	}
	if strings.Split(first, "@")[1] != strings.Split(again, "@")[1] {
		t.Errorf("pinned %s then %s", first, again)
	}
	ref, _ := r.Ref("kwc/workspace:run2")
	got, err := r.Image(t.Context(), ref)
	if err != nil {
		t.Fatalf("the second tag is not in the registry: %v", err)
	}
	if d, _ := got.Digest(); !strings.HasSuffix(again, d.String()) {
		t.Errorf("run2 serves %s, want %s", d, again)
	}
}

// unreadableLayers is an image whose layers cannot be read: its manifest and config are
// the image's own.
type unreadableLayers struct{ v1.Image }

func (u unreadableLayers) Layers() ([]v1.Layer, error) {
	return nil, os.ErrPermission
}

func (u unreadableLayers) LayerByDigest(v1.Hash) (v1.Layer, error) {
	return nil, os.ErrPermission
}

func sameContent(t *testing.T, want, got v1.Image) {
	t.Helper()
	wc, err := want.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	gc, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(wc.RootFS.DiffIDs) != len(gc.RootFS.DiffIDs) {
		t.Fatalf("layers: %d, want %d", len(gc.RootFS.DiffIDs), len(wc.RootFS.DiffIDs))
	}
	for i := range wc.RootFS.DiffIDs {
		if wc.RootFS.DiffIDs[i] != gc.RootFS.DiffIDs[i] {
			t.Errorf("layer %d holds %s, want %s", i, gc.RootFS.DiffIDs[i], wc.RootFS.DiffIDs[i])
		}
	}
}
