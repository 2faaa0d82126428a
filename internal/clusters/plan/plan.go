// Package plan describes what a kind or cluster run would create, without creating
// anything: the cluster config, the chart and its values, the lanes and the images.
// It is what --kwc.dry-run prints and what a failed preflight is shown beside.
package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"kwc.dev/kwc/internal/logtail"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"kwc.dev/kwc/internal/clusters/preflight"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/katashims"
	"kwc.dev/kwc/internal/kube/katadeploy"
)

// Plan is a run's intended shape.
type Plan struct {
	Target      config.Target
	ClusterName string
	ClusterFrom string
	Cluster     *v1alpha4.Cluster
	Chart       string
	Version     string
	Values      map[string]any
	Classes     []string
	Lanes       []config.Lane
	Images      []string
	Preflight   []preflight.Check
	// Kubeconfig and Registry are the cluster target's: where it connects and where
	// the nodes pull the run's images from.
	Kubeconfig, Registry string
	// InstallKata is false on a cluster where Kata is already installed (or absent),
	// and on a kind cluster without Kata; NoKata then says what the run does instead.
	InstallKata bool
	NoKata      string
	// Distribution is the k8sDistribution the chart is given; LeftOut are the chart's
	// shims this run does not test, each with why.
	Distribution string
	LeftOut      []katashims.Shim
}

// Print writes the plan for people.
func (p Plan) Print(w io.Writer) error {
	fmt.Fprintf(w, "kwc plan for target %s (dry run: nothing is created)\n\n", p.Target)
	if p.Cluster != nil {
		b, err := yaml.Marshal(p.Cluster)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "cluster %s, from kindconfigs/%s:\n%s\n", p.ClusterName, p.ClusterFrom, indent(string(b)))
	}
	if p.Kubeconfig != "" {
		fmt.Fprintf(w, "existing cluster from %s; the run's images are pushed to %s\n\n", p.Kubeconfig, p.Registry)
	}
	if p.InstallKata {
		vals, err := yaml.Marshal(p.Values)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "kata-deploy %s from %s (k8sDistribution %s), values:\n%s", p.Version, p.Chart, p.Distribution, indent(string(vals)))
		fmt.Fprintf(w, "  waits for RuntimeClasses and kubelet handlers: %s\n\n", strings.Join(p.Classes, ", "))
		p.printLeftOut(w)
	} else {
		why := p.NoKata
		if why == "" {
			why = "not installed by this run (kata.install is false); lanes come from the RuntimeClasses present"
		}
		fmt.Fprintf(w, "Kata: %s\n\n", why)
	}
	fmt.Fprintln(w, "lanes:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tROLE\tRUNTIMECLASS\tSHAPE\tISOLATION\tMEASURES\tMUST PASS")
	for _, l := range p.Lanes {
		role := string(l.Role)
		if l.Control != "" {
			role += " " + l.Control
		}
		rc := l.Runtime
		if rc == "default" {
			rc = "(none: runc)"
		}
		var must []string
		for _, c := range config.Criteria4 {
			if l.Expect[c] == config.VerdictPass {
				must = append(must, c)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, role, rc, l.Shape, l.Isolation, strings.Join(l.Criteria, ","), strings.Join(must, ","))
	}
	tw.Flush()
	where := "loaded into every node"
	if p.Registry != "" {
		where = "pushed to " + p.Registry
	}
	fmt.Fprintf(w, "\nimages (built here, %s):\n  %s\n", where, strings.Join(p.Images, "\n  "))
	if len(p.Preflight) > 0 {
		fmt.Fprintf(w, "\nhost preflight:\n%s", preflight.Render(p.Preflight))
	}
	return nil
}

// printLeftOut says, for every shim of the chart that gets no lane, why not: the
// plan answers "why is there no fc lane" before anyone asks.
func (p Plan) printLeftOut(w io.Writer) {
	if len(p.LeftOut) == 0 {
		return
	}
	fmt.Fprintln(w, "shims without a lane in this run:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range p.LeftOut {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.WhyLeftOut())
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func indent(s string) string {
	return logtail.Indent(strings.TrimRight(s, "\n"), "  ") + "\n"
}

// ForKind makes the kind target's plan from the config. kind's nodes are plain
// kubeadm, so the chart's k8sDistribution is k8s.
func ForKind(cfg *config.Config, cluster *v1alpha4.Cluster, checks []preflight.Check) (Plan, error) {
	vals, err := katadeploy.Values(cfg.Kata, "k8s")
	if err != nil {
		return Plan{}, err
	}
	if img := cfg.KindCluster.NodeImage; img != "" {
		if img == config.NodeImageOffline {
			img = "kwc's offline node image (make node-image builds it; the run builds it when missing)"
		}
		for i := range cluster.Nodes {
			cluster.Nodes[i].Image = img
		}
	}
	lanes, err := cfg.KindLanes()
	if err != nil {
		return Plan{}, err
	}
	noKata := ""
	switch cfg.KindCluster.Kata {
	case config.KindKataNone:
		noKata = "none (kindCluster.kata: none): the configured runc lanes and controls only; no KVM needed"
	case config.KindKataDecoy:
		noKata = "decoy (kindCluster.kata: decoy): no Kata; RuntimeClass " + config.DecoyRuntimeClass + " is runc under a Kata name, configured in every node's containerd, and its lanes must fail escape"
	}
	return Plan{
		Target: cfg.Target, ClusterName: cluster.Name, ClusterFrom: cfg.KindCluster.Config, Cluster: cluster,
		Chart: cfg.Kata.Chart, Version: cfg.Kata.Version, Values: vals, Classes: katadeploy.RuntimeClasses(cfg.Kata),
		Lanes: lanes, NoKata: noKata,
		Images: []string{
			cfg.Images.Workspace + " (dockerfiles/workspace on " + cfg.Images.WorkspaceBase + ")",
			"the fixtures' base (Go, from Debian's busybox-static), served by an in-process registry",
			"kwc-probe (static) copied into each workspace; the node agent DaemonSet image made in Go from it",
		},
		Preflight: checks, InstallKata: cfg.KindCluster.Kata == config.KindKataInstall,
		Distribution: "k8s", LeftOut: katashims.LeftOut(cfg.Kata.Shims),
	}, nil
}

// ForCluster makes the cluster target's plan: lanes are already resolved from the
// RuntimeClasses the cluster has (or will have, after the install); dist is the
// k8sDistribution read from its nodes.
func ForCluster(cfg *config.Config, kubeconfig, dist string, lanes []config.Lane) (Plan, error) {
	vals, err := katadeploy.Values(cfg.Kata, dist)
	if err != nil {
		return Plan{}, err
	}
	return Plan{
		Target: cfg.Target, Kubeconfig: kubeconfig, Registry: cfg.Cluster.Registry, InstallKata: cfg.Kata.Install,
		Chart: cfg.Kata.Chart, Version: cfg.Kata.Version, Values: vals, Classes: katadeploy.RuntimeClasses(cfg.Kata),
		Lanes: lanes, Distribution: dist, LeftOut: katashims.LeftOut(cfg.Kata.Shims),
		Images: []string{
			cfg.Cluster.Registry + "/kwc/workspace:<run id> (dockerfiles/workspace on " + cfg.Images.WorkspaceBase + ")",
			cfg.Cluster.Registry + "/kwc/node-agent:<run id> (made in Go: busybox-static and kwc-agent)",
			"kwc-probe (static) copied into each workspace and each node agent",
		},
	}, nil
}
