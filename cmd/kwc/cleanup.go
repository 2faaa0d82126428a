package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/clusterrun"
	"kwc.dev/kwc/internal/kindcluster"
	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/target/dockertarget"
)

// cleanupCmd removes what a killed run can leave: labelled containers and their
// volumes, kind clusters named for the run, the run's namespaces in the cluster
// KUBECONFIG names (the node agent's SIGTERM removes its canaries there), and canaries
// on this host (files, /dev/shm entries, keys, loop devices). Canary processes die
// with the harness; listeners die with its process.
func cleanupCmd(ctx context.Context, args []string) error {
	fs := newFlags("cleanup")
	run := fs.String("run", "", "the run id to clean up")
	all := fs.Bool("all", false, "clean up every kwc run")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "a cluster to remove the run's namespaces from (default $KUBECONFIG; none when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" && !*all {
		return errors.New("say which run: --run <id> (from the report folder's name) or --all")
	}
	var errs []error
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		if err := dockertarget.RemoveRun(ctx, cli, *run); err != nil {
			errs = append(errs, err)
		}
	}
	if err == nil {
		clusters, err := kindcluster.RemoveRun(*run)
		if err != nil {
			errs = append(errs, err)
		}
		for _, c := range clusters {
			fmt.Println("deleted kind cluster", c)
		}
	}
	if *kubeconfig != "" {
		nss, err := clusterrun.RemoveRun(ctx, *kubeconfig, *run)
		if err != nil {
			errs = append(errs, err)
		}
		for _, n := range nss {
			fmt.Println("deleting namespace", n)
		}
	}
	pattern := "*"
	if *run != "" {
		pattern = *run
	}
	dirs, _ := filepath.Glob(filepath.Join(nodeagent.CanaryRoot, pattern))
	states, _ := filepath.Glob(filepath.Join(nodeagent.CanaryRoot, "agent-"+pattern+".json"))
	dirs = append(dirs, states...)
	shm, _ := filepath.Glob("/dev/shm/" + nodeagent.Marker(pattern))
	for _, p := range append(dirs, shm...) {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("removed", p)
		}
	}
	keys, err := nodeagent.RemoveKeys(pattern)
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range keys {
		fmt.Println("removed key", k)
	}
	loops, err := nodeagent.RemoveLoops(pattern)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range loops {
		fmt.Println("detached", l)
	}
	work, _ := filepath.Glob(filepath.Join(os.TempDir(), "kwc-loop-"+pattern))
	for _, d := range work {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("removed", d)
		}
	}
	return errors.Join(errs...)
}
