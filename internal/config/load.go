package config

import (
	_ "embed"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded defaults, for `kwc config` and for documentation.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Overrides are the values flags may set on top of the files.
type Overrides struct {
	Target     string
	ReportsDir string
	Keep       bool
	// Registry and ContainerdSocket come from $KWC_REGISTRY and $KWC_CONTAINERD_SOCKET.
	Registry         string
	ContainerdSocket string
	// ContainerdConfig comes from $KWC_CONTAINERD_CONFIG.
	ContainerdConfig string
}

// Load decodes the embedded defaults, then the user file (if any), applies the
// overrides, fills defaults and validates. Every error names its source.
func Load(userFile string, o Overrides) (*Config, error) {
	c := &Config{}
	if err := decodeInto(c, defaultYAML, "embedded defaults"); err != nil {
		return nil, err
	}
	if userFile != "" {
		b, err := os.ReadFile(userFile)
		if err != nil {
			return nil, fmt.Errorf("reading config %s: %w (pass a readable kwc.yaml with --kwc.config, or none for the defaults)", userFile, err)
		}
		if err := decodeInto(c, b, userFile); err != nil {
			return nil, err
		}
	}
	if o.Target != "" {
		c.Target = Target(o.Target)
	}
	if o.ReportsDir != "" {
		c.ReportsDir = o.ReportsDir
	}
	if o.Keep {
		c.Keep = true
	}
	if o.Registry != "" {
		c.Cluster.Registry = o.Registry
	}
	if o.ContainerdSocket != "" {
		c.Cluster.ContainerdSocket = o.ContainerdSocket
	}
	if o.ContainerdConfig != "" {
		c.Cluster.ContainerdConfig = o.ContainerdConfig
	}
	c.Default()
	if err := c.Validate(); err != nil {
		src := "the embedded defaults"
		if userFile != "" {
			src = userFile
		}
		return nil, fmt.Errorf("invalid config (%s): %w", src, err)
	}
	return c, nil
}

// Decode strictly decodes one document on its own (no defaults merged): what tests and
// `kwc config validate` use to check a file.
func Decode(b []byte, source string) (*Config, error) {
	c := &Config{}
	if err := decodeInto(c, b, source); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeInto(c *Config, b []byte, source string) error {
	// Lists replace rather than merge, so a user's lanes are exactly the lanes run;
	// "lanes: null" or "lanes: []" means no lanes (and Validate says so), never the
	// defaults.
	var top map[string]any
	_ = yaml.Unmarshal(b, &top)
	if _, ok := top["lanes"]; ok {
		c.Lanes = nil
	}
	// Each file says what it is: a file without kwc's apiVersion and kind (another
	// tool's config, say) must not be merged into the defaults as if it were one.
	if top["apiVersion"] != APIVersion || top["kind"] != Kind {
		return fmt.Errorf("decoding %s: apiVersion %v, kind %v: want apiVersion %s and kind %s at the top of the file", source, top["apiVersion"], top["kind"], APIVersion, Kind)
	}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return fmt.Errorf("decoding %s: %w (see `kwc config defaults` for every field)", source, err)
	}
	if c.APIVersion != APIVersion || c.Kind != Kind {
		return fmt.Errorf("decoding %s: apiVersion %q, kind %q: want apiVersion %s and kind %s", source, c.APIVersion, c.Kind, APIVersion, Kind)
	}
	return nil
}

// Interval returns the duration configured for spec/key, falling back to default/key.
// An unknown key is a programming error, so it panics with the key's name.
func (c *Config) Interval(spec, key string) time.Duration {
	if d, ok := c.Intervals[spec+"/"+key]; ok {
		return d.Duration
	}
	if d, ok := c.Intervals["default/"+key]; ok {
		return d.Duration
	}
	panic(fmt.Sprintf("kwc config: no interval %s/%s nor default/%s", spec, key, key))
}
