// Package dockerfiles embeds the workspace image's build context and the build
// fixtures, each with the expectations its built image is checked against.
package dockerfiles

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"sigs.k8s.io/yaml"
)

//go:embed all:workspace all:fixtures all:kind-node
var files embed.FS

// Workspace is the workspace image's build context.
func Workspace() fs.FS {
	sub, err := fs.Sub(files, "workspace")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	return sub
}

// KindNode is the files of kwc's offline kind node image that kwc itself writes (the
// Dockerfile, units, CNI config); internal/images/nodeimage adds kind's files and the
// binaries.
func KindNode() fs.FS {
	sub, err := fs.Sub(files, "kind-node")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	return sub
}

// Expectation is what a fixture's built image must show when read back from the
// registry.
type Expectation struct {
	// BuildArgs are passed to the build besides BASE.
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	// Generated lists context files the suite generates (never committed).
	Generated   []string          `json:"generated,omitempty"`
	LayersAdded int               `json:"layersAdded"`
	User        string            `json:"user,omitempty"`
	WorkingDir  string            `json:"workingDir,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Cmd         []string          `json:"cmd,omitempty"`
	// RunOutput is what running the built image prints (trimmed).
	RunOutput string `json:"runOutput"`
}

// Fixture is one build fixture.
type Fixture struct {
	Name   string
	Expect Expectation
	// Context holds the Dockerfile and any committed files.
	Context fs.FS
}

// Fixtures returns every fixture, sorted by name, with its expectations decoded
// strictly.
func Fixtures() ([]Fixture, error) {
	entries, err := fs.ReadDir(files, "fixtures")
	if err != nil {
		return nil, err
	}
	var out []Fixture
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := path.Join("fixtures", e.Name())
		b, err := fs.ReadFile(files, path.Join(dir, "expect.yaml"))
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", e.Name(), err)
		}
		var x Expectation
		if err := yaml.UnmarshalStrict(b, &x); err != nil {
			return nil, fmt.Errorf("fixture %s: expect.yaml: %w", e.Name(), err)
		}
		sub, err := fs.Sub(files, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, Fixture{Name: e.Name(), Expect: x, Context: sub})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
