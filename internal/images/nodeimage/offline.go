package nodeimage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/images/engineimage"
)

// DefaultRepository is where kwc tags its node images.
const DefaultRepository = "127.0.0.1/kwc/kind-node"

// Offline says what kwc's own node image is made of; Ensure builds it.
type Offline struct {
	// Kubernetes is the version of the binaries in CacheDir/bin/node (client-go's).
	Kubernetes string
	// CacheDir holds the binaries (hack/kube-tools.sh --node, hack/containerd.sh) and
	// the Debian root filesystem's tarball.
	CacheDir string
	// Mirror is the Debian mirror mmdebstrap uses ("" for the host's apt sources).
	Mirror     string
	Repository string // default DefaultRepository
	Logf       engineimage.Logf
}

// Ensure builds kwc's offline node image unless the engine has it, and returns its
// reference. The same inputs give the same reference, so a second call costs the
// hashing only.
func (o Offline) Ensure(ctx context.Context, cli *client.Client) (string, error) {
	kindDir, err := KindModuleDir()
	if err != nil {
		return "", err
	}
	if o.Repository == "" {
		o.Repository = DefaultRepository
	}
	bin := filepath.Join(o.CacheDir, "bin", "node")
	cp := map[string]Component{}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"} {
		cp[c] = Component{Binary: filepath.Join(bin, c), Command: c}
	}
	work, err := os.MkdirTemp("", "kwc-node-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	return Ensure(ctx, cli, Build{
		Versions:     Versions{Kubernetes: o.Kubernetes, Etcd: "3.7.0-0", Pause: []string{"3.10", "3.10.2"}},
		BinDir:       bin,
		ControlPlane: cp,
		KindDir:      kindDir,
		Base: engineimage.DebianBase{Ref: o.Repository + "-base:bookworm", Suite: "bookworm", Mirror: o.Mirror,
			CacheDir: o.CacheDir, Name: "kind-node"},
		Repository: o.Repository,
		Work:       work,
		LogPath:    filepath.Join(o.CacheDir, "node-image-build.log"),
		Logf:       o.Logf,
	})
}

// KindVersion is the version of the kind module this binary was built with; a test
// binary records no modules, so there it is the one the main module requires (asked
// of go once).
var KindVersion = sync.OnceValue(kindVersion)

func kindVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kind" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "sigs.k8s.io/kind").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// KindModuleDir is the folder of the kind module this kwc was built with: its
// images/base/files go into the node image as they are published.
func KindModuleDir() (string, error) {
	version := KindVersion()
	if version == "" {
		return "", fmt.Errorf("cannot tell which kind module this kwc was built with (run it from the kwc repository)")
	}
	out, err := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/kind@"+version).Output()
	if err != nil {
		return "", fmt.Errorf("finding the kind module %s (go mod download): %w", version, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download gave no folder for sigs.k8s.io/kind@%s: %v", version, err)
	}
	return m.Dir, nil
}
