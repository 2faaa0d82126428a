package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/nodeagent"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/images/localregistry"
	"kwc.dev/kwc/internal/kube/clusterrun"
	"kwc.dev/kwc/internal/reporting/report"
	"kwc.dev/kwc/internal/runid"
	"kwc.dev/kwc/internal/target"
	"kwc.dev/kwc/internal/target/kubetarget"
)

// FixtureBase is the fixtures' base as served by the in-process registry and as an
// archive the workspaces load (they may have no network to pull it).
type FixtureBase struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	Archive []byte `json:"archive"`
	Layers  int    `json:"layers"`
}

// RunState is what every process of a run shares: made once by process 1 in
// SynchronizedBeforeSuite (images, registry, probe, canaries, node references) and
// adopted by every process. It is the run's one home for what specs read; nothing
// in it changes after adoption.
type RunState struct {
	Dir      string    `json:"dir"`
	Start    time.Time `json:"start"`
	Registry string    `json:"registry"`
	ProbeBin []byte    `json:"probeBin"`
	Base     FixtureBase
	// Host holds the canaries planted on the harness's host (docker target).
	Host *nodeagent.Held `json:"host,omitempty"`
	// AgentError says why no node holds canaries ("" when they do).
	AgentError string `json:"agentError,omitempty"`
	// NodeRefs is the probe set run on each node itself (by node; "" on docker).
	NodeRefs map[string][]verdict.ProbeVerdict `json:"nodeRefs"`
	// APIControls are the API checks' results in the run's misconfigured namespace.
	APIControls     map[string]verdict.Result `json:"apiControls,omitempty"`
	APIControlError string                    `json:"apiControlError,omitempty"`
	Secrets         []string                  `json:"secrets,omitempty"`
}

// Node is the node side of a lane: where its canaries are held and the node's state
// is read. The harness's own host on the docker target, the node agent of the
// workspace's node on Kubernetes.
type Node interface {
	nodeagent.Canaries
	Snapshot(ctx context.Context) (nodeagent.Snapshot, error)
	// Alive confirms the canaries and reads the node's kernel facts afresh.
	Alive(ctx context.Context) (nodeagent.Liveness, error)
}

// Adopt makes this process part of the run process 1 set up: the same report
// folder, registry, canaries and references. On Kubernetes it finds the node agents
// process 1 started.
func (s *Suite) Adopt(ctx context.Context, st RunState) error {
	s.State = st
	if s.Parallel.Process > 1 {
		s.Dir, s.start = st.Dir, st.Start
		s.Registry = localregistry.Connect(st.Registry)
	}
	for _, v := range st.Secrets {
		s.AddSecret(v)
	}
	if st.Host != nil {
		s.nodes = map[string]Node{"": nodeagent.OnHost{Held: *st.Host}}
		return nil
	}
	if s.Cluster == nil && s.Config != nil && s.Config.Target == config.TargetKind {
		if err := s.connectKind(st.Dir); err != nil {
			return err
		}
	}
	if s.Cluster == nil || st.AgentError != "" {
		return nil
	}
	agents, err := s.Cluster.RunningAgents(ctx)
	if err != nil {
		return fmt.Errorf("finding the node agents process 1 started: %w", err)
	}
	s.Agents = agents
	s.nodes = map[string]Node{}
	for n, a := range agents {
		s.nodes[n] = a
	}
	return nil
}

// NodeOf returns the node side of a workspace and the probe reference on that node,
// or why there is none.
func (s *Suite) NodeOf(ws target.Workspace) (Node, []verdict.ProbeVerdict, error) {
	n := s.NodeName(ws)
	if s.nodes == nil {
		return nil, nil, fmt.Errorf("%s", s.State.AgentError)
	}
	node, ok := s.nodes[n]
	if !ok {
		return nil, nil, fmt.Errorf("no node agent holds canaries on node %q", n)
	}
	return node, s.State.NodeRefs[n], nil
}

// NodeName is the node a workspace runs on: "" on the docker target, where the
// harness's host is the one node.
func (s *Suite) NodeName(ws target.Workspace) string {
	if s.Cluster == nil {
		return ""
	}
	return kubetarget.NodeOf(ws)
}

// Agent is the node agent on a workspace's node (nil on docker or without agents).
func (s *Suite) Agent(ws target.Workspace) *clusterrun.Agent {
	return s.Agents[s.NodeName(ws)]
}

// WritePart saves what this process recorded, for process 1 to merge
// (parts/<process>.json in the run folder). Process 1 keeps its own in memory.
func (s *Suite) WritePart() error {
	if s.Parallel.Process <= 1 {
		return nil
	}
	b, err := json.Marshal(s.Recorder.Part())
	if err != nil {
		return err
	}
	p := filepath.Join(s.Dir, "parts", strconv.Itoa(s.Parallel.Process)+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return report.WriteFileAtomic(p, b)
}

// MergeParts merges every other process's part into this process's report, and says
// which processes left none (their lanes stay "not observed").
func (s *Suite) MergeParts() error {
	var missing []string
	for proc := 2; proc <= s.Parallel.Total; proc++ {
		p := filepath.Join(s.Dir, "parts", strconv.Itoa(proc)+".json")
		b, err := os.ReadFile(p)
		if err != nil {
			missing = append(missing, fmt.Sprintf("process %d: %v", proc, err))
			continue
		}
		var part report.Conformance
		if err := json.Unmarshal(b, &part); err != nil {
			missing = append(missing, fmt.Sprintf("process %d: %v", proc, err))
			continue
		}
		s.Recorder.Merge(part)
	}
	_ = os.RemoveAll(filepath.Join(s.Dir, "parts"))
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("parallel processes left no results (their lanes are not observed): %s", strings.Join(missing, "; "))
	}
	return nil
}

// Parallel says which of a run's Ginkgo processes this is.
type Parallel struct {
	Process, Total int
	// Seed is what every process of the run shares and no other run has: the pid and
	// start time of the ginkgo process that started them.
	Seed string
}

// ParallelFrom reads Ginkgo's process number and count; the seed is the parent's
// pid and start time, which all processes of one `ginkgo --procs N` share.
func ParallelFrom(process, total int) Parallel {
	p := Parallel{Process: process, Total: total}
	if total > 1 {
		ppid := os.Getppid()
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ppid))
		// Field 22 (starttime) comes after the command, which may hold spaces.
		start := ""
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat)[i+1:]); len(f) > 19 {
				start = f[19]
			}
		}
		p.Seed = fmt.Sprintf("%d@%s", ppid, start)
	}
	return p
}

// runID is a new run's id: random for one process, shared by the processes of a
// parallel run.
func (p Parallel) runID() string {
	if p.Total > 1 && p.Seed != "" {
		return runid.Shared(p.Seed)
	}
	return runid.New()
}
