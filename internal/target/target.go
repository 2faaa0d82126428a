// Package target is the boundary between the suite and where workspaces run. A target
// starts a workspace per lane and lets the harness exec into it, copy files in and out,
// read its logs and stop it; docker, kind and cluster implement it.
package target

import (
	"context"
	"io"
	"time"

	"kwc.dev/kwc/internal/config"
)

// Labels every target puts on what it creates, so cleanup finds it by run.
const (
	LabelRun  = "dev.kwc.run"
	LabelLane = "dev.kwc.lane"
)

// NestedDockerHost is the socket of the engine kwc starts inside a workspace, and the
// only one its nested tools are pointed at: the default socket may be a mount of the
// node's own engine, and driving that would run kwc's builds and containers on the
// node.
const NestedDockerHost = "unix:///tmp/kwc/docker.sock"

// Target is where workspaces run.
type Target interface {
	// Name is the target's name as in kwc.yaml.
	Name() string
	// Preflight checks the target's prerequisites and says how to fix what is missing.
	Preflight(ctx context.Context) error
	// Runtimes lists the runtimes (engine runtimes or RuntimeClasses) lanes may name.
	Runtimes(ctx context.Context) ([]string, error)
	// StartWorkspace starts the workspace for a lane and waits until it can exec.
	StartWorkspace(ctx context.Context, lane config.Lane) (Workspace, error)
	// Cleanup removes everything this run created that is still there.
	Cleanup(ctx context.Context) error
	// Describe records facts about the target for the report (versions, kernel).
	Describe(ctx context.Context) map[string]string
}

// Workspace is one running workspace.
type Workspace interface {
	Lane() config.Lane
	// Name is how a person finds the workspace (a container or pod name).
	Name() string
	// Exec runs a command. A non-zero exit is a result, not an error; an error means the
	// command could not be run or observed (the workspace died, the engine went away).
	Exec(ctx context.Context, req ExecRequest) (ExecResult, error)
	// CopyIn unpacks a tar stream at dir inside the workspace.
	CopyIn(ctx context.Context, dir string, tarStream io.Reader) error
	// CopyOut returns a tar stream of path inside the workspace.
	CopyOut(ctx context.Context, path string) (io.ReadCloser, error)
	// Logs returns the workspace's own output.
	Logs(ctx context.Context) (string, error)
	// Alive reports an error when the workspace is no longer running.
	Alive(ctx context.Context) error
	// EnterHint says how a person gets a shell in the workspace (for --kwc.keep).
	EnterHint() string
	// Stop removes the workspace and what it alone used.
	Stop(ctx context.Context) error
}

// ExecRequest is one command in a workspace.
type ExecRequest struct {
	Cmd []string
	// User runs the command as this user; empty means the image's user (uid 5001).
	User  string
	Env   []string
	Stdin io.Reader
	// Timeout bounds the command; the target kills it (and reports TimedOut) past it.
	Timeout time.Duration
}

// ExecResult is what a command did.
type ExecResult struct {
	Cmd      []string      `json:"cmd"`
	User     string        `json:"user,omitempty"`
	Stdout   string        `json:"stdout"`
	Stderr   string        `json:"stderr"`
	ExitCode int           `json:"exitCode"`
	TimedOut bool          `json:"timedOut,omitempty"`
	Duration time.Duration `json:"duration"`
}

// OK is true when the command ran to completion with exit code 0.
func (r ExecResult) OK() bool { return r.ExitCode == 0 && !r.TimedOut }
