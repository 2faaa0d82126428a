// Package proberun builds the static kwc-probe binary and runs it in a workspace: as
// root through sudo (what the workspace user can do), and nested, inside a privileged
// container the workspace's own engine starts.
package proberun

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"kwc.dev/kwc/internal/probespec"
	"kwc.dev/kwc/internal/target"
)

// Build compiles cmd/kwc-probe statically into dir and returns the binary's bytes.
func Build(ctx context.Context, dir string) ([]byte, string, error) {
	return BuildCommand(ctx, dir, "kwc-probe")
}

// BuildCommand compiles cmd/<name> statically (CGO_ENABLED=0) into dir.
func BuildCommand(ctx context.Context, dir, name string) ([]byte, string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("building %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	return b, out, err
}

func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the kwc module (go env GOMOD): %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the kwc module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// Where the probe lives in a workspace.
const (
	Dir    = "/tmp/kwc-bin"
	Binary = Dir + "/kwc-probe"
)

// Install copies the binary into the workspace.
func Install(ctx context.Context, ws target.Workspace, bin []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "kwc-bin/", Mode: 0o755, ModTime: time.Now()}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "kwc-bin/kwc-probe", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return ws.CopyIn(ctx, "/tmp", &buf)
}

// Run runs the probe set in the workspace as root through sudo; where sudo is refused
// it runs as the workspace user, and says so.
func Run(ctx context.Context, ws target.Workspace, spec probespec.Spec, timeout time.Duration) (probespec.Result, string, error) {
	return run(ctx, ws, spec, timeout, [][]string{{"sudo", "-n", Binary, "--spec", "-"}, {Binary, "--spec", "-"}})
}

// RunDirect runs the probe set as the container's own user, for a place that is root
// already and has no sudo (the node agent's pod, as the node's reference).
func RunDirect(ctx context.Context, ws target.Workspace, spec probespec.Spec, timeout time.Duration) (probespec.Result, string, error) {
	return run(ctx, ws, spec, timeout, [][]string{{Binary, "--spec", "-"}})
}

func run(ctx context.Context, ws target.Workspace, spec probespec.Spec, timeout time.Duration, cmds [][]string) (probespec.Result, string, error) {
	res, ev, ran, err := firstThatRuns(ctx, ws, spec, timeout, cmds, 5)
	if err == nil && !ran {
		err = fmt.Errorf("kwc-probe did not run in %s (tried: %s)", ws.Name(), ev)
	}
	return res, ev, err
}

// Nested runs the probe set inside a privileged container started by the workspace's
// own engine (docker, then podman), with the workspace's PID and network namespaces
// and its root mounted: each flag must map to the workspace, never to the node.
// applicable is false when no engine in the workspace can start such a container.
func Nested(ctx context.Context, ws target.Workspace, spec probespec.Spec, image string, timeout time.Duration) (res probespec.Result, evidence string, applicable bool, err error) {
	var cmds [][]string
	for _, tool := range []string{"docker", "podman"} {
		// docker only ever talks to the workspace's own nested engine (see
		// target.NestedDockerHost); podman has no daemon.
		cmds = append(cmds, []string{"sudo", "-n", "env", "DOCKER_HOST=" + target.NestedDockerHost, tool, "run", "--rm", "-i", "--privileged", "--pid=host", "--network=host",
			"-v", "/:/host:ro", "-v", Dir + ":" + Dir + ":ro", image, Binary, "--spec", "-"})
	}
	return firstThatRuns(ctx, ws, spec, timeout, cmds, 3)
}

// firstThatRuns tries each command with the spec on standard input until one exits
// 0, and decodes its result; ran says whether any did. The evidence lists every
// attempt, with the last tailLines of a failed one's standard error.
func firstThatRuns(ctx context.Context, ws target.Workspace, spec probespec.Spec, timeout time.Duration, cmds [][]string, tailLines int) (probespec.Result, string, bool, error) {
	in, err := json.Marshal(spec)
	if err != nil {
		return probespec.Result{}, "", false, err
	}
	var ev strings.Builder
	for _, cmd := range cmds {
		r, err := ws.Exec(ctx, target.ExecRequest{Cmd: cmd, Stdin: bytes.NewReader(in), Timeout: timeout})
		if err != nil {
			return probespec.Result{}, ev.String(), false, err
		}
		fmt.Fprintf(&ev, "$ %s: exit %d in %.1fs\n", strings.Join(cmd, " "), r.ExitCode, r.Duration.Seconds())
		if !r.OK() {
			ev.WriteString(indentedTail(r.Stderr, tailLines))
			continue
		}
		res, err := Decode([]byte(r.Stdout))
		if err != nil {
			return probespec.Result{}, ev.String(), true, err
		}
		return res, ev.String(), true, nil
	}
	return probespec.Result{}, ev.String(), false, nil
}

// OnNode runs the probe binary on the node itself, as the reference that reaches
// everything (the harness runs on the node on the docker target).
func OnNode(ctx context.Context, bin string, spec probespec.Spec) (probespec.Result, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return probespec.Result{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "--spec", "-")
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return probespec.Result{}, fmt.Errorf("kwc-probe on the node: %v: %s", err, stderr.String())
	}
	return Decode(out)
}

// Decode reads a probe result strictly.
func Decode(b []byte) (probespec.Result, error) {
	var res probespec.Result
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return probespec.Result{}, fmt.Errorf("decoding kwc-probe output: %w (first bytes: %.200q)", err, b)
	}
	return res, nil
}

// indentedTail is the end of a command's output as evidence lines.
func indentedTail(s string, n int) string {
	if last := logtail.Last(s, n); last != "" {
		return logtail.Indent(last, "  ") + "\n"
	}
	return ""
}
