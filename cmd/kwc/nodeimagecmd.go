package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/images/engineimage"
	"kwc.dev/kwc/internal/images/nodeimage"
)

// nodeImageCmd builds kwc's offline kind node image into the engine DOCKER_HOST names
// and prints its reference. The binaries come from make node-image's earlier steps.
func nodeImageCmd(ctx context.Context, args []string) error {
	fs := newFlags("node-image", "[--repository REPO]")
	repo := fs.String("repository", "127.0.0.1/kwc/kind-node", "where the image is tagged (the tag is <kubernetes version>-<hash of the inputs>)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := config.Load("", config.Overrides{})
	if err != nil {
		return err
	}
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("the node image is built by the container engine: %w", err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("no container engine answers (%w): start dockerd or set DOCKER_HOST", err)
	}
	kindDir, err := kindModuleDir()
	if err != nil {
		return err
	}
	cache := cachedir.Path()
	bin := filepath.Join(cache, "bin", "node")
	cp := map[string]nodeimage.Component{}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"} {
		cp[c] = nodeimage.Component{Binary: filepath.Join(bin, c), Command: c}
	}
	work, err := os.MkdirTemp("", "kwc-node-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	start := time.Now()
	ref, err := nodeimage.Ensure(ctx, cli, nodeimage.Build{
		Versions:     nodeimage.Versions{Kubernetes: kubeapitest.Version, Etcd: "3.7.0-0", Pause: []string{"3.10", "3.10.2"}},
		BinDir:       bin,
		ControlPlane: cp,
		KindDir:      kindDir,
		Base: engineimage.DebianBase{Ref: "127.0.0.1/kwc/kind-node-base:bookworm", Suite: "bookworm", Mirror: cfg.Images.DebianMirror,
			CacheDir: cache, Name: "kind-node"},
		Repository: *repo,
		Work:       work,
		LogPath:    filepath.Join(cache, "node-image-build.log"),
		Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, "kwc: "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kwc: node image ready in %s\n", time.Since(start).Round(time.Second))
	fmt.Println(ref)
	return nil
}

// kindModuleDir is the folder of the kind module this kwc was built with: its
// images/base/files go into the node image as they are published.
func kindModuleDir() (string, error) {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kind" {
				version = d.Version
			}
		}
	}
	if version == "" {
		return "", fmt.Errorf("this kwc binary does not record the kind module's version")
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
