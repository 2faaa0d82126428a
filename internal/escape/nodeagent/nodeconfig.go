package nodeagent

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"kwc.dev/kwc/internal/kube/kataconfig"
)

// Where Kata keeps its configuration: kata-deploy's defaults (Go and Rust runtimes)
// and the administrator's overrides.
var kataConfigGlobs = []string{
	"/opt/kata/share/defaults/kata-containers/*.toml",
	"/opt/kata/share/defaults/kata-containers/runtime-rs/*.toml",
	"/etc/kata-containers/*.toml",
}

// hostSideProcesses are the Kata programs that run on the node, outside the guest.
var hostSideProcesses = []string{"virtiofsd", "qemu-system", "cloud-hypervisor", "firecracker", "containerd-shim-kata"}

// CollectNodeConfig records what kataconfig judges, from the node whose root is at
// root: containerd's configuration and every file it imports, Kata's configuration
// files, and the command lines of Kata's host-side processes (visible through the
// node's PID namespace). The Kata version is not on disk in a stable place; the
// harness takes it from the RuntimeClasses kata-deploy annotates.
func CollectNodeConfig(root, containerdConfig string) kataconfig.Node {
	at := func(p string) string { return filepath.Join(root, p) }
	n := kataconfig.Node{Containerd: map[string][]byte{}, KataConfigs: map[string][]byte{}}
	if b, err := os.ReadFile(at(containerdConfig)); err == nil {
		n.Containerd[containerdConfig] = b
		var doc struct {
			Imports []string `toml:"imports"`
		}
		if _, err := toml.Decode(string(b), &doc); err == nil {
			for _, imp := range doc.Imports {
				if !filepath.IsAbs(imp) {
					imp = filepath.Join(filepath.Dir(containerdConfig), imp)
				}
				files, _ := filepath.Glob(at(imp))
				for _, f := range files {
					if b, err := os.ReadFile(f); err == nil {
						n.Containerd[nodePath(root, f)] = b
					}
				}
			}
		}
	}
	for _, p := range kataconfig.ConfigPaths(n.Containerd) {
		if b, err := os.ReadFile(at(p)); err == nil {
			n.KataConfigs[p] = b
		}
	}
	for _, g := range kataConfigGlobs {
		files, _ := filepath.Glob(at(g))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				n.KataConfigs[nodePath(root, f)] = b
			}
		}
	}
	n.Processes = processesNamed(hostSideProcesses)
	return n
}

func nodePath(root, p string) string {
	if root == "/" || root == "" {
		return p
	}
	return strings.TrimPrefix(p, strings.TrimSuffix(root, "/"))
}

func processesNamed(names []string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		base := filepath.Base(args[0])
		for _, n := range names {
			if strings.HasPrefix(base, n) {
				out = append(out, strings.Join(args, " "))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
