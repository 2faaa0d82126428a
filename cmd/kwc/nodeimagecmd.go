package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/images/nodeimage"
)

// nodeImageCmd builds kwc's offline kind node image into the engine DOCKER_HOST names
// and prints its reference. The binaries come from make node-image's earlier steps.
func nodeImageCmd(ctx context.Context, args []string) error {
	fs := newFlags("node-image", "[--repository REPO]")
	repo := fs.String("repository", nodeimage.DefaultRepository, "where the image is tagged (the tag is <kubernetes version>-<hash of the inputs>)")
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
	start := time.Now()
	ref, err := nodeimage.Offline{Kubernetes: kubeapitest.Version, CacheDir: cachedir.Path(), Mirror: cfg.Images.DebianMirror,
		Repository: *repo, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "kwc: "+f+"\n", a...) }}.Ensure(ctx, cli)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kwc: node image ready in %s\n", time.Since(start).Round(time.Second))
	fmt.Println(ref)
	return nil
}
