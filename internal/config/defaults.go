package config

import (
	"time"

	"kwc.dev/kwc/internal/katashims"
)

// Default fills what a lane or section leaves empty. It is idempotent.
func (c *Config) Default() {
	if c.Target == "" {
		c.Target = TargetKind
	}
	if c.ReportsDir == "" {
		c.ReportsDir = "reports"
	}
	if c.Probes.Timeout.Duration == 0 {
		c.Probes.Timeout.Duration = 20 * time.Second
	}
	for _, p := range []*ToolPolicy{&c.Criteria.Build, &c.Criteria.Run} {
		if p.Require == "" {
			p.Require = "any"
		}
	}
	if c.KindCluster.Config == "" {
		c.KindCluster.Config = "default.yaml"
	}
	if c.KindCluster.Kata == "" {
		c.KindCluster.Kata = KindKataInstall
	}
	if c.Cluster.ContainerdSocket == "" {
		c.Cluster.ContainerdSocket = "/run/containerd/containerd.sock"
	}
	if c.Cluster.ContainerdConfig == "" {
		c.Cluster.ContainerdConfig = "/etc/containerd/config.toml"
	}
	if c.Kata.ImageStore == "" {
		c.Kata.ImageStore = "memory"
	}
	if len(c.Kata.Shims) == 0 {
		// The default lanes are every shim a plain KVM host can run; the rest need
		// hardware or node set-up kwc cannot provide (katashims says which and why).
		c.Kata.Shims = katashims.PlainKVM()
	}
	if len(c.Kata.Shapes) == 0 {
		c.Kata.Shapes = []Shape{ShapeGitLab, ShapePrivileged}
	}
	for i := range c.Lanes {
		c.Lanes[i].Default()
	}
	if c.Docker.KataLane != nil {
		c.Docker.KataLane.Default()
	}
	for i := range c.Docker.SandboxLanes {
		c.Docker.SandboxLanes[i].Default()
	}
}

// Default fills a lane's optional fields.
func (l *Lane) Default() {
	if l.Shape == "" {
		l.Shape = ShapeGitLab
		if l.Privileged {
			l.Shape = ShapePrivileged
		}
	}
	if l.Isolation == "" {
		l.Isolation = IsolationContainer
	}
	if len(l.Criteria) == 0 {
		l.Criteria = append([]string(nil), Criteria4...)
	}
	if l.Network == "" {
		l.Network = NetworkNone
	}
	if l.Storage == "" {
		l.Storage = StorageVolume
		if l.Isolation == IsolationSandbox {
			l.Storage = StorageTmpfs
		}
	}
	for i := range l.Mounts {
		if l.Mounts[i].Type == "" {
			l.Mounts[i].Type = MountBind
		}
	}
}
