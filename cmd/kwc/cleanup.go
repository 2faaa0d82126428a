package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/clusters/leftovers"
)

// cleanupCmd removes what a killed run can leave, by run id: see package leftovers for
// what that is and how each object is proven to be kwc's.
func cleanupCmd(ctx context.Context, args []string) error {
	fs := newFlags("cleanup", "--run <id> | --all [--kubeconfig FILE]")
	run := fs.String("run", "", "the run id to clean up (the last part of the report folder's name)")
	all := fs.Bool("all", false, "clean up every kwc run")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "a cluster to remove the run's namespaces from (default $KUBECONFIG; none when empty)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	var runs leftovers.Runs
	switch {
	case *all && *run != "":
		return usageError{fs, "--run and --all exclude each other"}
	case *all:
		runs = leftovers.AllRuns()
	case *run == "":
		return usageError{fs, "say which run: --run <id> (from the report folder's name) or --all"}
	default:
		r, err := leftovers.Run(*run)
		if err != nil {
			return usageError{fs, err.Error()}
		}
		runs = r
	}
	w := leftovers.Where{Kubeconfig: *kubeconfig}
	if cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation()); err == nil {
		if _, err := cli.Ping(ctx, client.PingOptions{}); err == nil {
			w.Engine = cli
		} else {
			fmt.Fprintf(os.Stderr, "kwc: no container engine answers (%v): containers, volumes and kind clusters were not looked for\n", err)
		}
	}
	removed, err := leftovers.Clean(ctx, runs, w)
	for _, r := range removed {
		fmt.Println("removed", r)
	}
	if len(removed) == 0 && err == nil {
		fmt.Println("nothing of kwc's was left")
	}
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}
