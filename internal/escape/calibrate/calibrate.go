// Package calibrate runs the escape probes in every context available locally, the
// node itself (the reference that reaches everything), each control lane, the
// GitLab-shaped runc lane and a real VM, and checks that every probe reaches its
// control and nothing in the VM: the evidence that the probes neither miss nor cry
// wolf.
package calibrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"kwc.dev/kwc/internal/logtail"
	"kwc.dev/kwc/internal/reporting/report"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/escape/proberun"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/escape/vmguest"
	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/target"
)

// Options say what to calibrate.
type Options struct {
	Config   *config.Config
	RunID    string
	CacheDir string
	// Target starts the container contexts; nil leaves them out (and says so).
	Target target.Target
	// EngineID and Sockets describe the node's own engine, for the runtime-socket probe.
	EngineID string
	Sockets  []string
	VM       bool
	// Sandboxes are lanes on a sandboxed runtime (gVisor): like the VM, no probe may
	// reach from there. Empty when the engine has no such runtime.
	Sandboxes []config.Lane
	Logf      func(string, ...any)
}

// Context is one place the probes ran.
type Context struct {
	Name    string                 `json:"name"`
	Kind    string                 `json:"kind"` // node, container, sandbox, vm
	Control string                 `json:"control,omitempty"`
	Error   string                 `json:"error,omitempty"`
	Probes  []verdict.ProbeVerdict `json:"probes"`
	Facts   map[string]string      `json:"facts,omitempty"`
	Seconds float64                `json:"durationSeconds"`
}

// Calibration is calibration.json.
type Calibration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	RunID      string            `json:"runID"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Node       map[string]string `json:"node"`
	Canaries   []string          `json:"canaries"`
	Contexts   []Context         `json:"contexts"`
	// Problems are why the calibration failed; empty means it holds.
	Problems []string `json:"problems"`
}

// Run calibrates. It returns the calibration even when it finds problems; err is for
// failing to calibrate at all.
func Run(ctx context.Context, o Options) (Calibration, error) {
	logf := o.Logf
	cal := Calibration{APIVersion: "kwc.dev/v1alpha1", Kind: "Calibration", RunID: o.RunID, Start: time.Now().UTC()}
	before, err := nodeagent.TakeSnapshot()
	if err != nil {
		return cal, err
	}
	scratch, err := os.MkdirTemp("", "kwc-calibrate-")
	if err != nil {
		return cal, err
	}
	defer os.RemoveAll(scratch)
	logf("building kwc-probe (static)")
	bin, binPath, err := proberun.Build(ctx, scratch)
	if err != nil {
		return cal, err
	}
	planted, err := nodeagent.Plant(nodeagent.Options{RunID: o.RunID, Sockets: o.Sockets, EngineID: o.EngineID, Folders: nodeagent.HostFolders, ProbeTimeout: o.Config.Probes.Timeout.Duration, Discovery: o.Config.Probes.Discovery.Bounds(), Logf: logf})
	if err != nil {
		return cal, err
	}
	defer func() {
		if err := planted.Remove(); err != nil {
			logf("node agent: removing canaries: %v", err)
		}
	}()
	cal.Node, cal.Canaries = planted.Facts(), planted.Inventory()
	sec := verdict.Secret{Marker: planted.Spec().Marker, Token: planted.Token()}
	spec := planted.Spec()
	judge := func(c *Context, res probespec.Result) {
		c.Probes = verdict.JudgeAll(res, cal.Node, sec)
		c.Facts = res.Context
	}

	// The node itself: the reference where everything is reached.
	{
		start := time.Now()
		c := Context{Name: "node", Kind: "node"}
		res, err := proberun.OnNode(ctx, binPath, spec)
		if err != nil {
			c.Error = err.Error()
		} else {
			judge(&c, res)
		}
		if _, err := os.Stat(spec.TempDir); err == nil {
			cal.Problems = append(cal.Problems, "safety: the probe left its temporary directory "+spec.TempDir+" behind on the node")
		}
		c.Seconds = time.Since(start).Seconds()
		cal.Contexts = append(cal.Contexts, c)
		logf("context node: %d probes in %.1fs", len(c.Probes), c.Seconds)
	}
	if o.Target != nil {
		for _, lane := range o.Config.Lanes {
			c := containerContext(ctx, o, lane, bin, spec, judge)
			cal.Contexts = append(cal.Contexts, c)
			logf("context %s: %d probes in %.1fs %s", c.Name, len(c.Probes), c.Seconds, c.Error)
		}
		for _, lane := range o.Sandboxes {
			c := containerContext(ctx, o, lane, bin, spec, judge)
			c.Kind = "sandbox"
			cal.Contexts = append(cal.Contexts, c)
			logf("context %s (sandbox, runtime %s): %d probes in %.1fs %s", c.Name, lane.Runtime, len(c.Probes), c.Seconds, firstLine(c.Error))
		}
	}
	if o.VM {
		start := time.Now()
		c := Context{Name: "vm", Kind: "vm"}
		res, console, err := bootVM(ctx, o, bin, spec, scratch)
		if err != nil {
			c.Error = err.Error() + "\nconsole tail:\n" + logtail.Last(console, 15)
		} else {
			judge(&c, res)
		}
		c.Seconds = time.Since(start).Seconds()
		cal.Contexts = append(cal.Contexts, c)
		logf("context vm (%s): %d probes in %.1fs %s", vmguest.Accel(), len(c.Probes), c.Seconds, firstLine(c.Error))
	}
	cal.Problems = append(cal.Problems, Check(cal.Contexts)...)
	after, err := nodeagent.TakeSnapshot()
	if err != nil {
		cal.Problems = append(cal.Problems, "safety: "+err.Error())
	} else if diff := nodeagent.Diff(before, after); len(diff) > 0 {
		cal.Problems = append(cal.Problems, "safety: node state changed during calibration: "+strings.Join(diff, "; "))
	}
	cal.End = time.Now().UTC()
	return cal, nil
}

func containerContext(ctx context.Context, o Options, lane config.Lane, bin []byte, spec probespec.Spec, judge func(*Context, probespec.Result)) (c Context) {
	start := time.Now()
	c = Context{Name: lane.Name, Kind: "container", Control: lane.Control}
	defer func() { c.Seconds = time.Since(start).Seconds() }()
	ws, err := o.Target.StartWorkspace(ctx, lane)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer func() { _ = ws.Stop(context.WithoutCancel(ctx)) }()
	if err := proberun.Install(ctx, ws, bin); err != nil {
		c.Error = err.Error()
		return c
	}
	res, ev, err := proberun.Run(ctx, ws, spec, time.Minute)
	if err != nil {
		c.Error = err.Error() + "\n" + ev
		return c
	}
	judge(&c, res)
	return c
}

func bootVM(ctx context.Context, o Options, bin []byte, spec probespec.Spec, scratch string) (probespec.Result, string, error) {
	kernel, err := vmguest.Kernel(ctx, o.CacheDir, o.Logf)
	if err != nil {
		return probespec.Result{}, "", err
	}
	initrd := filepath.Join(scratch, "initramfs.cpio")
	if err := vmguest.Initramfs(bin, initrd); err != nil {
		return probespec.Result{}, "", err
	}
	// The guest sees only its own kernel: it gets the same spec, tempDir included.
	return vmguest.Boot(ctx, kernel, initrd, spec, 3*time.Minute)
}

// Check lists every way the calibration fails: a probe not reached in its control
// context, a probe reached (or unable to run) in the VM or a sandbox, a context that
// did not run.
func Check(ctxs []Context) []string {
	var problems []string
	byControl := map[string]Context{}
	for _, c := range ctxs {
		if c.Error != "" {
			problems = append(problems, fmt.Sprintf("context %s did not run: %s", c.Name, firstLine(c.Error)))
		}
		if c.Control != "" {
			byControl[c.Control] = c
		}
	}
	var node Context
	for _, c := range ctxs {
		if c.Kind == "node" {
			node = c
		}
	}
	for _, p := range probespec.Catalog {
		ctl, ok := byControl[p.Control]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no %s context ran, so nothing shows the probe works", p.ID, p.Control))
			continue
		}
		v, ok := find(ctl.Probes, p.ID)
		if nv, _ := find(node.Probes, p.ID); ok && v.Result == verdict.NotApplicable && nv.Result == verdict.NotApplicable {
			continue // the primitive does not exist on this node: nothing to reach anywhere
		}
		if !ok || v.Result != verdict.Reached {
			problems = append(problems, fmt.Sprintf("%s: %s in its control %s (%s), must be reached", p.ID, v.Result, ctl.Name, v.Reason))
		}
	}
	for _, v := range node.Probes {
		if v.Result != verdict.Reached && v.Result != verdict.NotApplicable {
			problems = append(problems, fmt.Sprintf("%s: %s on the node itself (%s); with full access it must be reached", v.ID, v.Result, v.Reason))
		}
	}
	for _, c := range ctxs {
		if (c.Kind != "vm" && c.Kind != "sandbox") || c.Error != "" {
			continue
		}
		for _, v := range c.Probes {
			if v.Result != verdict.Blocked && v.Result != verdict.NotApplicable {
				problems = append(problems, fmt.Sprintf("%s: %s in %s %s (%s), must be blocked or not applicable", v.ID, v.Result, c.Kind, c.Name, v.Reason))
			}
		}
		if len(c.Probes) != len(probespec.Catalog) {
			problems = append(problems, fmt.Sprintf("%s %s ran %d of %d probes", c.Kind, c.Name, len(c.Probes), len(probespec.Catalog)))
		}
	}
	return problems
}

func find(vs []verdict.ProbeVerdict, id string) (verdict.ProbeVerdict, bool) {
	for _, v := range vs {
		if v.ID == id {
			return v, true
		}
	}
	return verdict.ProbeVerdict{Result: "missing", Reason: "the probe did not report"}, false
}

// Table prints the probe x context table.
func Table(w io.Writer, cal Calibration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"PROBE", "CONTROL"}
	for _, c := range cal.Contexts {
		name := c.Name
		if c.Control != "" {
			name += "(" + c.Control + ")"
		}
		head = append(head, strings.ToUpper(name))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, p := range probespec.Catalog {
		row := []string{p.ID, p.Control}
		for _, c := range cal.Contexts {
			if c.Error != "" {
				row = append(row, "(no run)")
				continue
			}
			v, _ := find(c.Probes, p.ID)
			cell := string(v.Result)
			if c.Control == p.Control && c.Control != "" {
				cell += "*"
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w, "* the probe's designated control: it must be reached there")
	var slowest float64
	for _, c := range cal.Contexts {
		fmt.Fprintf(w, "%s: %.2fs\n", c.Name, c.Seconds)
		if c.Kind != "vm" && c.Seconds > slowest {
			slowest = c.Seconds
		}
	}
	if len(cal.Problems) == 0 {
		fmt.Fprintf(w, "calibration holds: every probe reached in its control, none in the VM or a sandbox\n")
		return
	}
	fmt.Fprintf(w, "calibration FAILS (%d problems):\n", len(cal.Problems))
	for _, p := range cal.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

// Write writes calibration.json into dir.
func Write(dir string, cal Calibration) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(cal, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "calibration.json")
	return p, report.WriteFileAtomic(p, append(b, '\n'))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
