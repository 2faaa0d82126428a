package leftovers

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/clusterrun"
	"kwc.dev/kwc/internal/kindcluster"
	"kwc.dev/kwc/internal/target/dockertarget"
)

// Where says which places besides this host to clean.
type Where struct {
	// Engine is the container engine (containers, volumes, kind's node containers);
	// nil when none answers.
	Engine *client.Client
	// Kubeconfig names a cluster whose kwc namespaces go too; empty for none.
	Kubeconfig string
}

// Clean removes the selected runs' objects everywhere kwc puts them: the engine's
// labelled containers and volumes, kind clusters named kwc-<id>, labelled namespaces
// in the named cluster (the node agent's SIGTERM removes its canaries there), and
// this host's canaries and processes. It goes on past failures and reports each.
func Clean(ctx context.Context, r Runs, w Where) ([]Removed, error) {
	var out []Removed
	var errs []error
	if w.Engine != nil {
		rs, err := dockertarget.RemoveRun(ctx, w.Engine, r.ID())
		for _, x := range rs {
			out = append(out, Removed(x))
		}
		if err != nil {
			errs = append(errs, err)
		}
		clusters, err := kindcluster.RemoveRun(r.ID())
		for _, c := range clusters {
			out = append(out, Removed("kind cluster "+c))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if w.Kubeconfig != "" {
		nss, err := clusterrun.RemoveRun(ctx, w.Kubeconfig, r.ID())
		for _, n := range nss {
			out = append(out, Removed("namespace "+n+" (deleting)"))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", w.Kubeconfig, err))
		}
	}
	host, err := Host(r)
	out = append(out, host...)
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}
