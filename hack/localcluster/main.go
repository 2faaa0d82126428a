// Command localcluster runs a one-node Kubernetes cluster from real components on this
// host (see internal/clusters/localcluster) until it is interrupted, then removes it. The
// Makefile's e2e-local target runs the cluster target against it:
//
//	go run ./hack/localcluster --dir /tmp/kwc-local --env /tmp/kwc-local.env
//
// Once the node is Ready it writes the env file (KUBECONFIG, KWC_REGISTRY, KWC_CONTAINERD_SOCKET,
// KWC_CONTAINERD_CONFIG), which callers wait for and source.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"kwc.dev/kwc/internal/clusters/localcluster"
)

func main() {
	dir := flag.String("dir", "/tmp/kwc-local", "folder the cluster lives in (removed on exit)")
	decoy := flag.Bool("decoy-kata", false, "add the kata-decoy RuntimeClass: runc under a Kata name, whose lanes must fail")
	env := flag.String("env", "", "file to write KUBECONFIG, KWC_REGISTRY, KWC_CONTAINERD_SOCKET and KWC_CONTAINERD_CONFIG to once the node is Ready")
	flag.Parse()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	c, err := localcluster.Up(ctx, localcluster.Options{Dir: *dir, Logf: logf, Decoy: *decoy})
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
	logf("local cluster: node %s Ready in %s; kubeconfig %s, registry %s", localcluster.NodeName, time.Since(start).Round(time.Second), c.Kubeconfig, c.Registry.Host())
	if *env != "" {
		s := fmt.Sprintf("KUBECONFIG=%s\nKWC_REGISTRY=%s\nKWC_CONTAINERD_SOCKET=%s\nKWC_CONTAINERD_CONFIG=%s\n", c.Kubeconfig, c.Registry.Host(), c.ContainerdSocket, c.ContainerdConfig)
		if err := os.WriteFile(*env, []byte(s), 0o644); err != nil {
			logf("localcluster: %v", err)
			cancel()
		}
	}
	<-ctx.Done()
	logf("local cluster: tearing down")
	if *env != "" {
		_ = os.Remove(*env)
	}
	if err := c.Down(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
	logf("local cluster: removed")
}
