package leftovers

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/clusters/kindcluster"
	"kwc.dev/kwc/internal/kube/clusterrun"
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
	var t tally
	if w.Engine != nil {
		removed, err := dockertarget.RemoveRun(ctx, w.Engine, r.ID())
		t.named("", removed, err)
		clusters, err := kindcluster.RemoveRun(r.ID())
		t.named("kind cluster", clusters, err)
	}
	if w.Kubeconfig != "" {
		nss, err := clusterrun.RemoveRun(ctx, w.Kubeconfig, r.ID())
		if err != nil {
			err = fmt.Errorf("cluster %s: %w", w.Kubeconfig, err)
		}
		t.named("namespace (deleting)", nss, err)
	}
	t.add(Host(r))
	return t.result()
}
