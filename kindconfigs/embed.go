// Package kindconfigs embeds the kind cluster configurations kwc creates, decoded
// strictly into kind's own v1alpha4 types.
package kindconfigs

import (
	"embed"
	"fmt"
	"regexp"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

//go:embed *.yaml
var files embed.FS

// Names lists the embedded configs.
func Names() []string {
	entries, _ := files.ReadDir(".")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

var pinned = regexp.MustCompile(`^kindest/node:v[0-9.]+@sha256:[0-9a-f]{64}$`)

// Load decodes an embedded config strictly, applies kind's defaults, names the cluster
// and checks what kwc relies on: every node image pinned by digest, at least one node
// that runs workspaces.
func Load(name, clusterName string) (*v1alpha4.Cluster, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("kind config %q: %w (have %v)", name, err, Names())
	}
	return Decode(b, name, clusterName)
}

// Decode is Load for bytes from elsewhere (a user's --kwc.kind-config).
func Decode(b []byte, source, clusterName string) (*v1alpha4.Cluster, error) {
	c := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, fmt.Errorf("kind config %s: %w", source, err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return nil, fmt.Errorf("kind config %s: kind %q apiVersion %q, want Cluster kind.x-k8s.io/v1alpha4", source, c.Kind, c.APIVersion)
	}
	v1alpha4.SetDefaultsCluster(c)
	c.Name = clusterName
	workspaces := 0
	for i, n := range c.Nodes {
		if !pinned.MatchString(n.Image) {
			return nil, fmt.Errorf("kind config %s: nodes[%d].image %q is not pinned by digest (kindest/node:vX.Y.Z@sha256:...)", source, i, n.Image)
		}
		if n.Labels["kwc.dev/node"] == "workspace" {
			workspaces++
		}
	}
	if workspaces == 0 {
		return nil, fmt.Errorf("kind config %s: no node labelled kwc.dev/node: workspace; workspaces need one", source)
	}
	return c, nil
}
