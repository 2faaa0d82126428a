package nodeimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/internal/images/baseimage"
	"kwc.dev/kwc/internal/images/engineimage"
)

// BasePackages are the Debian packages of the node's root filesystem: what kind's
// images/base installs, with Debian's runc, CNI plugins and jq in place of the ones
// kind builds.
var BasePackages = []string{"systemd", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool",
	"util-linux", "mount", "kmod", "libseccomp2", "pigz", "e2fsprogs", "bash", "ca-certificates", "jq",
	"procps", "runc", "containernetworking-plugins", "fuse-overlayfs"}

// nodeBinaries are the files of Build.BinDir the image holds.
var nodeBinaries = []string{"containerd", "ctr", "containerd-shim-runc-v2", "crictl", "kubeadm", "kubelet", "kubectl"}

// Build says how to make the node image.
type Build struct {
	// Versions are the Kubernetes, etcd and pause tags.
	Versions Versions
	// BinDir holds the node's binaries (hack/kube-tools.sh --node, hack/containerd.sh).
	BinDir string
	// ControlPlane are the control-plane binaries by component.
	ControlPlane map[string]Component
	// KindDir is the kind module's folder: its images/base/files go in unmodified.
	KindDir string
	// Base is the node's Debian root filesystem (mmdebstrap, cached).
	Base engineimage.DebianBase
	// Repository is where the image is tagged, e.g. 127.0.0.1/kwc/kind-node.
	Repository string
	// Work is a scratch folder for the build context.
	Work string
	// LogPath keeps the engine build's log (it outlives Work, to explain a failure).
	LogPath string
	Logf    engineimage.Logf
}

// Ensure builds the node image unless the engine has it already, and returns its
// reference: Repository:<Kubernetes version>-<hash of every input>, so a changed
// input makes a new image and an unchanged one is never rebuilt.
func Ensure(ctx context.Context, cli *client.Client, b Build) (string, error) {
	step := func(n int, what string) func() {
		start := time.Now()
		b.Logf("node image %d/4: %s", n, what)
		return func() { b.Logf("node image %d/4: %s done in %s", n, what, time.Since(start).Round(time.Second)) }
	}
	done := step(1, "Debian root filesystem ("+strings.Join(BasePackages, " ")+")")
	b.Base.Include = BasePackages
	if b.Base.Variant == "" {
		b.Base.Variant = "minbase"
	}
	baseID, err := engineimage.EnsureDebianBase(ctx, cli, b.Base, b.Logf)
	if err != nil {
		return "", fmt.Errorf("node image step 1 (Debian root filesystem): %w", err)
	}
	done()

	done = step(2, "control-plane images")
	bb, err := baseimage.Busybox(baseimage.DefaultBusybox)
	if err != nil {
		return "", fmt.Errorf("node image step 2 (control-plane images): %w", err)
	}
	imgs, err := ControlPlaneImages(b.ControlPlane, b.Versions, bb)
	if err != nil {
		return "", fmt.Errorf("node image step 2 (control-plane images): %w", err)
	}
	ctxDir := filepath.Join(b.Work, "context")
	if err := os.RemoveAll(ctxDir); err != nil {
		return "", err
	}
	if err := WriteArchive(filepath.Join(ctxDir, filepath.FromSlash(archiveFile)), imgs); err != nil {
		return "", fmt.Errorf("node image step 2 (control-plane images): %w", err)
	}
	done()

	done = step(3, "build context (kind's base files, binaries, kwc's units)")
	if err := assemble(ctxDir, b); err != nil {
		return "", fmt.Errorf("node image step 3 (build context): %w", err)
	}
	// The archive's bytes vary with the order go-containerregistry writes its
	// entries in; the images it holds, by tag and digest, do not.
	archived, err := archiveIdentity(imgs)
	if err != nil {
		return "", fmt.Errorf("node image step 3 (build context): %w", err)
	}
	sum, err := hashTree(ctxDir, archiveFile, append([]string{baseID}, archived...)...)
	if err != nil {
		return "", fmt.Errorf("node image step 3 (build context): %w", err)
	}
	ref := b.Repository + ":" + b.Versions.Kubernetes + "-" + sum[:12]
	done()

	if ok, _, err := engineimage.Exists(ctx, cli, ref); err != nil {
		return "", err
	} else if ok {
		b.Logf("node image 4/4: %s is in the engine already", ref)
		return ref, nil
	}
	done = step(4, "engine build of "+ref)
	if _, err := engineimage.BuildImage(ctx, cli, engineimage.Build{
		Ref: ref, Context: os.DirFS(ctxDir),
		Args:    map[string]string{"BASE": b.Base.Ref, "KUBERNETES_VERSION": b.Versions.Kubernetes},
		LogPath: b.LogPath,
	}, b.Logf); err != nil {
		return "", fmt.Errorf("node image step 4 (engine build): %w", err)
	}
	done()
	return ref, nil
}

// assemble writes the build context: kwc's files, kind's base files and the binaries.
func assemble(dir string, b Build) error {
	if err := copyFS(dir, dockerfiles.KindNode()); err != nil {
		return err
	}
	kindFiles := filepath.Join(b.KindDir, "images", "base", "files")
	if _, err := os.Stat(filepath.Join(kindFiles, "usr", "local", "bin", "entrypoint")); err != nil {
		return fmt.Errorf("kind's base files are not at %s (the kind module folder): %w", kindFiles, err)
	}
	if err := copyFS(filepath.Join(dir, "kind"), os.DirFS(kindFiles)); err != nil {
		return err
	}
	for _, name := range nodeBinaries {
		src := filepath.Join(b.BinDir, name)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("%s is missing: build it with hack/kube-tools.sh --node and hack/containerd.sh (make node-image does): %w", src, err)
		}
		if err := copyFile(filepath.Join(dir, "bin", name), src, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func copyFS(dst string, src fs.FS) error {
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := src.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		return writeFrom(target, in, 0o644)
	})
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFrom(dst, in, mode)
}

func writeFrom(dst string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// archiveFile is where the build context holds the control-plane images.
const archiveFile = "images/control-plane.tar"

// archiveIdentity is "tag digest" of every archived image, sorted.
func archiveIdentity(imgs map[name.Tag]v1.Image) ([]string, error) {
	var out []string
	for t, img := range imgs {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("digest of %s: %w", t, err)
		}
		out = append(out, t.String()+" "+d.String())
	}
	sort.Strings(out)
	return out, nil
}

// hashTree is the sha256 of every file's path, mode and content under dir, in path
// order, except skip (a path relative to dir, identified by the extras instead),
// and of the extra strings (the base's engine id, the archived images): the image's
// identity.
func hashTree(dir, skip string, extra ...string) (string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); !d.IsDir() && filepath.ToSlash(rel) != skip {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, e := range extra {
		fmt.Fprintf(h, "extra %s\n", e)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "file %s %o %d\n", filepath.ToSlash(rel), st.Mode().Perm(), st.Size())
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
