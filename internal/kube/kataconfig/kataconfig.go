// Package kataconfig checks a node's Kata and containerd configuration for the escape
// paths that do not cross the guest kernel: advisories fixed in later releases, host
// devices handed to privileged guests, annotations that reach the hypervisor or
// virtiofsd, an unsandboxed virtiofsd, a debug console. It reads recorded files (the
// node agent collects them) and decides nothing about the node beyond them.
package kataconfig

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/kataversion"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"
)

// Advisory is one entry of fixtures/kata-advisories.yaml.
type Advisory struct {
	ID    string `json:"id"`
	CVE   string `json:"cve,omitempty"`
	Fixed string `json:"fixed"`
	// Affected is the published affected range, or AffectedUnpublished.
	Affected   string `json:"affected"`
	Confirmed  bool   `json:"confirmed"`
	Summary    string `json:"summary"`
	Source     string `json:"source"`
	Mitigation string `json:"mitigation"`
	// Shims limits the advisory to these shims; empty is every shim.
	Shims       []string `json:"shims,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
	Checks      []string `json:"checks"`
	Techniques  []string `json:"techniques"`
}

// Advisory fields with fixed vocabularies.
const (
	AffectedUnpublished     = "unpublished"
	MitigationUpgrade       = "upgrade"
	MitigationConfiguration = "configuration"
)

// DecodeAdvisories reads the advisories table strictly.
func DecodeAdvisories(b []byte) ([]Advisory, error) {
	var doc struct {
		Advisories []Advisory `json:"advisories"`
	}
	if err := yaml.UnmarshalStrict(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding the advisories table: %w", err)
	}
	for _, a := range doc.Advisories {
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("advisory %q: %w", a.ID, err)
		}
	}
	return doc.Advisories, nil
}

func (a Advisory) validate() error {
	switch {
	case a.ID == "":
		return errors.New("no id")
	case a.Fixed == "":
		return errors.New("no fixed release")
	case a.Affected == "":
		return fmt.Errorf("no affected range; write %q when the source names only the fix", AffectedUnpublished)
	case a.Source == "":
		return errors.New("no source")
	case a.Mitigation != MitigationUpgrade && a.Mitigation != MitigationConfiguration:
		return fmt.Errorf("mitigation %q: %s or %s", a.Mitigation, MitigationUpgrade, MitigationConfiguration)
	case !slices.Contains(a.Checks, versionCheckID):
		return fmt.Errorf("checks must include %s, which compares every advisory with the installed release", versionCheckID)
	}
	if _, err := kataversion.Parse(a.Fixed); err != nil {
		return err
	}
	return nil
}

// AffectsAllEarlier says whether every release before the fix is affected: the range
// is unpublished (counted as all, since a false pass is worse than a strict floor) or
// is exactly "< fixed".
func (a Advisory) AffectsAllEarlier() bool {
	return a.Affected == AffectedUnpublished || strings.ReplaceAll(a.Affected, " ", "") == "<"+a.Fixed
}

// Floor is the oldest release kwc should install: the newest fix among confirmed
// advisories that affect every earlier release.
func Floor(advisories []Advisory) kataversion.Version {
	var floor kataversion.Version
	for _, a := range advisories {
		if !a.Confirmed || !a.AffectsAllEarlier() {
			continue
		}
		if v := kataversion.MustParse(a.Fixed); floor.Less(v) {
			floor = v
		}
	}
	return floor
}

const versionCheckID = "K01-kata-advisories"

// Node is what the node agent recorded.
type Node struct {
	KataVersion string
	// Containerd is containerd's configuration by path: the main file and every file
	// it imports (kata-deploy's drop-in among them).
	Containerd map[string][]byte
	// KataConfigs are Kata configuration files by path.
	KataConfigs map[string][]byte
	// Processes are command lines of Kata's host-side processes (virtiofsd, VMMs).
	Processes []string
}

// DangerousAnnotations are enable_annotations entries that let a pod author reach
// host-side programs or the guest's boot: each is a known host-escape primitive.
var DangerousAnnotations = map[string]string{
	"virtio_fs_extra_args": "passes arguments to virtiofsd on the host (-o source=/ exports the host's root; GHSA-rr59-xxvx-96qr)",
	"kernel_params":        "sets guest kernel parameters (a debug console; GHSA-rr59-xxvx-96qr)",
	"path":                 "chooses the hypervisor binary run on the host (CVE-2020-27151)",
	"jailer_path":          "chooses the jailer binary run on the host (CVE-2020-27151)",
	"ctlpath":              "chooses a host control binary (CVE-2020-27151)",
	"virtio_fs_daemon":     "chooses the virtiofsd binary run on the host (CVE-2020-27151)",
	"file_mem_backend":     "points guest memory at a host path",
	"entropy_source":       "points the guest's entropy device at a host path",
	".*":                   "allows every hypervisor annotation",
}

// Check runs every configuration check. On a node with no Kata at all (no version, no
// Kata runtime in containerd, no Kata configuration file) each is not applicable.
func Check(n Node, advisories []Advisory) []verdict.Finding {
	runtimes, rerr := containerdKataRuntimes(n.Containerd)
	configs, cerr := parseKata(n.KataConfigs)
	if n.KataVersion == "" && rerr == nil && len(runtimes) == 0 && len(n.KataConfigs) == 0 {
		out := []verdict.Finding{checkVersion("-", nil, nil, nil), checkHostDevices(nil, nil), checkAnnotations(nil, nil), checkVirtiofsd(nil, nil, nil), checkDebugConsole(nil, nil)}
		for i := range out {
			out[i].Result, out[i].Reason, out[i].Evidence = verdict.NotApplicable, "no Kata on this node: no version, no Kata runtime in containerd's configuration, no Kata configuration file", nil
		}
		for _, a := range advisories {
			out[0].Techniques = append(out[0].Techniques, a.Techniques...)
		}
		out[0].Techniques = dedupe(out[0].Techniques)
		return out
	}
	return []verdict.Finding{
		checkVersion(n.KataVersion, advisories, runtimes, rerr),
		checkHostDevices(runtimes, rerr),
		checkAnnotations(configs, cerr),
		checkVirtiofsd(configs, cerr, n.Processes),
		checkDebugConsole(configs, cerr),
	}
}

// appliesTo says whether a shim-limited advisory concerns this node: it does when a
// Kata runtime for one of its shims is configured, or when the runtimes are unknown
// (a configuration that did not parse proves nothing is absent).
func appliesTo(a Advisory, runtimes []runtimeEntry, rerr error) bool {
	if len(a.Shims) == 0 || rerr != nil {
		return true
	}
	for _, r := range runtimes {
		for _, s := range a.Shims {
			if r.name == "kata-"+s || r.name == "kata-"+s+"-debug" {
				return true
			}
		}
	}
	return false
}

func checkVersion(installed string, advisories []Advisory, runtimes []runtimeEntry, rerr error) verdict.Finding {
	f := verdict.Finding{ID: versionCheckID, Title: "the installed Kata is not older than any advisory's fix"}
	if installed == "" {
		f.Result, f.Reason = verdict.Error, "no Kata version recorded on the node"
		return f
	}
	have, err := kataversion.Parse(installed)
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	var open []string
	for _, a := range advisories {
		f.Techniques = append(f.Techniques, a.Techniques...)
		if a.Fixed == "" || !a.Confirmed {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: unconfirmed (%s), reported only", a.ID, a.Summary))
			continue
		}
		fixed, _ := kataversion.Parse(a.Fixed)
		if have.Less(fixed) && !appliesTo(a, runtimes, rerr) {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: Kata %s < %s, but it concerns %s and no such runtime is configured", a.ID, installed, a.Fixed, strings.Join(a.Shims, ", ")))
			continue
		}
		if have.Less(fixed) {
			open = append(open, fmt.Sprintf("%s (fixed in %s)", a.ID, a.Fixed))
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: Kata %s < %s: %s", a.ID, installed, a.Fixed, a.Summary))
		} else {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: fixed in %s, have %s", a.ID, a.Fixed, installed))
		}
	}
	f.Techniques = dedupe(f.Techniques)
	if len(open) > 0 {
		f.Result, f.Reason = verdict.Reached, "Kata "+installed+" predates the fix of "+strings.Join(open, ", ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "Kata "+installed+" has every confirmed fix"
	return f
}

type runtimeEntry struct {
	name, runtimeType string
	noHostDevices     bool
	podAnnotations    []string
	configPath        string
}

// containerdKataRuntimes finds Kata runtime entries in a containerd 1.x (config
// version 2) or 2.x (version 3) configuration.
func containerdKataRuntimes(files map[string][]byte) ([]runtimeEntry, error) {
	if len(files) == 0 {
		return nil, errors.New("no containerd configuration recorded")
	}
	var out []runtimeEntry
	for _, p := range slices.Sorted(maps.Keys(files)) {
		rts, err := kataRuntimesIn(files[p])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, rts...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func kataRuntimesIn(b []byte) ([]runtimeEntry, error) {
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing the containerd configuration: %w", err)
	}
	plugins, _ := doc["plugins"].(map[string]any)
	var out []runtimeEntry
	for _, key := range []string{"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"} {
		cri, _ := plugins[key].(map[string]any)
		ctd, _ := cri["containerd"].(map[string]any)
		rts, _ := ctd["runtimes"].(map[string]any)
		for name, v := range rts {
			rt, _ := v.(map[string]any)
			typ, _ := rt["runtime_type"].(string)
			if !strings.Contains(typ, "kata") && !strings.HasPrefix(name, "kata") {
				continue
			}
			e := runtimeEntry{name: name, runtimeType: typ}
			e.noHostDevices, _ = rt["privileged_without_host_devices"].(bool)
			if opts, ok := rt["options"].(map[string]any); ok {
				e.configPath, _ = opts["ConfigPath"].(string)
			}
			if pa, ok := rt["pod_annotations"].([]any); ok {
				for _, a := range pa {
					e.podAnnotations = append(e.podAnnotations, fmt.Sprint(a))
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func checkHostDevices(rts []runtimeEntry, err error) verdict.Finding {
	f := verdict.Finding{ID: "K02-privileged-without-host-devices", Title: "every Kata runtime keeps host devices out of privileged guests", Techniques: []string{"T31", "P16"}}
	switch {
	case err != nil:
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	case len(rts) == 0:
		f.Result, f.Reason = verdict.NotApplicable, "no Kata runtime is configured in containerd"
		return f
	}
	var bad []string
	for _, r := range rts {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s): privileged_without_host_devices = %v", r.name, r.runtimeType, r.noHostDevices))
		if !r.noHostDevices {
			bad = append(bad, r.name)
		}
	}
	if len(bad) > 0 {
		f.Result, f.Reason = verdict.Reached, "a privileged pod under "+strings.Join(bad, ", ")+" gets every host block device: privileged_without_host_devices is not true"
		return f
	}
	f.Result, f.Reason = verdict.Blocked, fmt.Sprintf("all %d Kata runtimes set privileged_without_host_devices = true", len(rts))
	return f
}

type kataFile struct {
	path        string
	hypervisors map[string]map[string]any
	agent       map[string]any
}

func parseKata(files map[string][]byte) ([]kataFile, error) {
	if len(files) == 0 {
		return nil, errors.New("no Kata configuration file recorded")
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []kataFile
	for _, p := range paths {
		var doc map[string]any
		if err := toml.Unmarshal(files[p], &doc); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", p, err)
		}
		kf := kataFile{path: p, hypervisors: map[string]map[string]any{}}
		hyp, _ := doc["hypervisor"].(map[string]any)
		for name, v := range hyp {
			if m, ok := v.(map[string]any); ok {
				kf.hypervisors[name] = m
			}
		}
		agent, _ := doc["agent"].(map[string]any)
		kf.agent, _ = agent["kata"].(map[string]any)
		out = append(out, kf)
	}
	return out, nil
}

func strings_(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func checkAnnotations(files []kataFile, err error) verdict.Finding {
	f := verdict.Finding{ID: "K03-hypervisor-annotations", Title: "no hypervisor annotation that reaches host programs or the guest's boot is enabled", Techniques: []string{"T35", "T37", "T39", "P15"}}
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	var bad, unreadable []string
	for _, kf := range files {
		for _, name := range slices.Sorted(maps.Keys(kf.hypervisors)) {
			enabled := strings_(kf.hypervisors[name]["enable_annotations"])
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s [hypervisor.%s] enable_annotations = %q", kf.path, name, enabled))
			for _, entry := range enabled {
				// Kata reads each entry as a regular expression over the annotation's
				// name: "kernel_.*" or ".+" enables kernel_params as surely as the name.
				re, err := regexp.Compile("^(?:" + entry + ")$")
				if err != nil {
					unreadable = append(unreadable, fmt.Sprintf("%q in %s: %v", entry, name, err))
					continue
				}
				for _, d := range slices.Sorted(maps.Keys(DangerousAnnotations)) {
					if d != ".*" && re.MatchString(d) {
						bad = append(bad, fmt.Sprintf("%s (by %q) in %s: %s", d, entry, name, DangerousAnnotations[d]))
					}
				}
			}
		}
	}
	if len(bad) > 0 {
		f.Result, f.Reason = verdict.Reached, "a pod author can set "+strings.Join(bad, "; ")
		return f
	}
	if len(unreadable) > 0 {
		f.Result, f.Reason = verdict.Error, "enable_annotations entries that are not regular expressions, so what they enable is unknown: "+strings.Join(unreadable, "; ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "enable_annotations holds none of the dangerous annotations"
	return f
}

// ConfigPaths are the configuration files containerd's Kata runtimes name
// (options.ConfigPath): a runtime may point anywhere, not only at kata-deploy's files.
func ConfigPaths(containerd map[string][]byte) []string {
	rts, _ := containerdKataRuntimes(containerd)
	var out []string
	for _, r := range rts {
		if r.configPath != "" {
			out = append(out, r.configPath)
		}
	}
	return dedupe(out)
}

// AnnotationAllowed says whether the hypervisor annotation (kernel_params, say)
// reaches Kata when a pod sets it under the runtime handler: containerd must pass
// it (pod_annotations, globs) and the handler's configuration file must enable it
// (enable_annotations, regular expressions). The evidence says which lines decided.
func AnnotationAllowed(n Node, handler, annotation string) (bool, []string, error) {
	rts, err := containerdKataRuntimes(n.Containerd)
	if err != nil {
		return false, nil, err
	}
	key := "io.katacontainers.config.hypervisor." + annotation
	for _, r := range rts {
		if r.name != handler {
			continue
		}
		var ev []string
		passed := false
		for _, p := range r.podAnnotations {
			if ok, _ := path.Match(p, key); ok {
				passed = true
				ev = append(ev, fmt.Sprintf("containerd passes %s to %s (pod_annotations %q)", key, handler, p))
				break
			}
		}
		if !passed {
			return false, append(ev, fmt.Sprintf("containerd's pod_annotations for %s (%q) do not pass %s", handler, r.podAnnotations, key)), nil
		}
		b, ok := n.KataConfigs[r.configPath]
		if !ok {
			return false, ev, fmt.Errorf("%s's configuration %q was not recorded on the node", handler, r.configPath)
		}
		files, err := parseKata(map[string][]byte{r.configPath: b})
		if err != nil {
			return false, ev, err
		}
		for _, name := range slices.Sorted(maps.Keys(files[0].hypervisors)) {
			for _, re := range strings_(files[0].hypervisors[name]["enable_annotations"]) {
				if m, err := regexp.MatchString("^(?:"+re+")$", annotation); err == nil && m {
					return true, append(ev, fmt.Sprintf("%s [hypervisor.%s] enable_annotations has %q", r.configPath, name, re)), nil
				}
			}
		}
		return false, append(ev, fmt.Sprintf("%s enables no annotation matching %s", r.configPath, annotation)), nil
	}
	return false, nil, fmt.Errorf("no Kata runtime %q in containerd's configuration", handler)
}

func unsandboxed(args string) []string {
	norm := strings.ReplaceAll(args, "=", " ")
	var hits []string
	for _, flag := range []string{"--sandbox none", "--seccomp none"} {
		if strings.Contains(norm, flag) {
			hits = append(hits, flag)
		}
	}
	return hits
}

func checkVirtiofsd(files []kataFile, err error, procs []string) verdict.Finding {
	f := verdict.Finding{ID: "K04-virtiofsd-sandboxed", Title: "virtiofsd runs sandboxed and with seccomp", Techniques: []string{"T38", "T33"}}
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	var bad []string
	for _, kf := range files {
		for _, name := range slices.Sorted(maps.Keys(kf.hypervisors)) {
			args := strings.Join(strings_(kf.hypervisors[name]["virtio_fs_extra_args"]), " ")
			if hits := unsandboxed(args); len(hits) > 0 {
				bad = append(bad, fmt.Sprintf("%s [hypervisor.%s] virtio_fs_extra_args has %s", kf.path, name, strings.Join(hits, ", ")))
			}
		}
	}
	for _, p := range procs {
		if !strings.Contains(p, "virtiofsd") {
			continue
		}
		f.Evidence = append(f.Evidence, "running: "+p)
		if hits := unsandboxed(p); len(hits) > 0 {
			bad = append(bad, "a running virtiofsd has "+strings.Join(hits, ", "))
		}
	}
	if len(bad) > 0 {
		f.Result, f.Reason = verdict.Reached, strings.Join(bad, "; ")
		f.Evidence = append(f.Evidence, bad...)
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "no virtiofsd configuration or process disables its sandbox or seccomp"
	return f
}

func checkDebugConsole(files []kataFile, err error) verdict.Finding {
	f := verdict.Finding{ID: "K05-debug-console", Title: "no guest debug console is enabled", Techniques: []string{"T37"}}
	if err != nil {
		f.Result, f.Reason = verdict.Error, err.Error()
		return f
	}
	var bad []string
	for _, kf := range files {
		if on, _ := kf.agent["debug_console_enabled"].(bool); on {
			bad = append(bad, kf.path+": [agent.kata] debug_console_enabled = true")
		}
		for _, name := range slices.Sorted(maps.Keys(kf.hypervisors)) {
			if kp, _ := kf.hypervisors[name]["kernel_params"].(string); strings.Contains(kp, "debug_console") {
				bad = append(bad, fmt.Sprintf("%s [hypervisor.%s] kernel_params = %q", kf.path, name, kp))
			}
		}
	}
	if len(bad) > 0 {
		f.Result, f.Reason = verdict.Reached, strings.Join(bad, "; ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "debug console disabled in every configuration"
	return f
}

func dedupe(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}
