// kwc-agent is the node agent of the Kubernetes targets, run by a privileged DaemonSet
// in the disposable test cluster (host PID, network and IPC, the canary directory
// mounted from the node). "hold" plants the run's canaries on the node, writes what
// the harness needs (the probe spec, the node's facts and the secret) to a root-only
// file there, holds them until it is stopped, then removes every one. "show" prints
// that file, for the harness's exec; the workspace never sees it. "alive" confirms
// every held canary and reads the node's kernel facts afresh, before and after a
// lane. "snapshot" prints the node's state (for the harness's before/after comparison around each lane) and
// "node-config" the containerd and Kata configuration and Kata's host-side processes
// (for the configuration checks), both read from the node's root, which the DaemonSet
// mounts read-only at /host.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"kwc.dev/kwc/internal/escape/nodeagent"
)

// nodeRW is where the DaemonSet mounts the node's root writable: the agent plants a
// folder canary in each host folder workspaces get mounted most often, and removes it.
const nodeRW = "/node-rw"

func statePath(run string) string {
	return filepath.Join(nodeagent.CanaryRoot, "agent-"+run+".json")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kwc-agent hold --run ID [--containerd-socket PATH] | show --run ID | alive --run ID | snapshot | node-config [--containerd-config PATH]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	run := fs.String("run", "", "the run id")
	socket := fs.String("containerd-socket", "/run/containerd/containerd.sock", "containerd's socket on the node")
	probeTimeout := fs.Duration("probe-timeout", nodeagent.DefaultProbeTimeout, "the cap on each escape probe (the harness's probes.timeout)")
	ctdConfig := fs.String("containerd-config", "/etc/containerd/config.toml", "containerd's configuration on the node")
	root := fs.String("root", "/host", "the node's root filesystem as the agent sees it (the DaemonSet mounts it read-only)")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "snapshot":
		snap, err := nodeagent.TakeSnapshotAt(*root)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kwc-agent: %v\n", err)
			os.Exit(1)
		}
		printJSON(snap)
		return
	case "node-config":
		printJSON(nodeagent.CollectNodeConfig(*root, *ctdConfig))
		return
	}
	if *run == "" {
		fmt.Fprintln(os.Stderr, "kwc-agent: --run is required")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "hold":
		if err := hold(*run, *socket, *probeTimeout); err != nil {
			fmt.Fprintf(os.Stderr, "kwc-agent: %v\n", err)
			os.Exit(1)
		}
	case "show":
		os.Stdout.Write(readState(*run))
	case "alive":
		var h nodeagent.Held
		if err := json.Unmarshal(readState(*run), &h); err != nil {
			fmt.Fprintf(os.Stderr, "kwc-agent: reading the held canaries: %v\n", err)
			os.Exit(1)
		}
		printJSON(nodeagent.CheckCanaries(h, true))
	default:
		fmt.Fprintf(os.Stderr, "kwc-agent: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// readState is what "hold" wrote for run: the spec, the facts and the secret.
func readState(run string) []byte {
	b, err := os.ReadFile(statePath(run))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwc-agent: %v (is the agent for run %s holding?)\n", err, run)
		os.Exit(1)
	}
	return b
}

func printJSON(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "kwc-agent: %v\n", err)
		os.Exit(1)
	}
}

func hold(run, socket string, probeTimeout time.Duration) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	p, err := nodeagent.Plant(nodeagent.Options{RunID: run, ContainerdSockets: []string{socket}, ProbeTimeout: probeTimeout,
		Folders: nodeagent.HostFolders, NodeRoot: nodeRW, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(statePath(run))
		if err := p.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "kwc-agent: removing canaries: %v\n", err)
		}
	}()
	b, err := json.Marshal(nodeagent.HeldFrom(p))
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath(run), b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kwc-agent: holding canaries for run %s: %v\n", run, p.Inventory())
	<-sig
	fmt.Fprintln(os.Stderr, "kwc-agent: stopping; removing canaries")
	return nil
}
