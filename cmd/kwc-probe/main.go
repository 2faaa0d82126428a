// kwc-probe runs kwc's escape probes where it is started (a workspace, a nested
// container, a VM, the node itself) and prints what it observed as JSON. It is told
// where to look, never the secrets; the harness decides every verdict.
//
// "kwc-probe kubelet --host H" asks the node's kubelet (kubeletask) from here, with
// the service-account token if one is mounted, and prints the answers.
//
// As PID 1 (the calibration VM's init) it mounts the kernel filesystems, reads its
// spec from the kernel command line (kwc.spec=<base64 JSON>), prints the result on
// the console between markers, and powers the VM off.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"kwc.dev/kwc/internal/escape/probe"
	"kwc.dev/kwc/internal/kube/kubeletask"
	"kwc.dev/kwc/internal/probespec"
)

func main() {
	if os.Getpid() == 1 {
		vmInit()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "kubelet" {
		askKubelet(os.Args[2:])
		return
	}
	specPath := flag.String("spec", "-", "probe spec as JSON: a file, or - for standard input")
	list := flag.Bool("list", false, "print the probe catalogue and exit")
	flag.Parse()
	if *list {
		emit(os.Stdout, probespec.Catalog)
		return
	}
	spec, err := readSpec(*specPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwc-probe: %v\n", err)
		os.Exit(2)
	}
	emit(os.Stdout, probe.Run(context.Background(), spec))
}

// serviceAccountToken is where Kubernetes mounts a pod's token; the GitLab workspace
// shape mounts none.
const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func askKubelet(args []string) {
	fs := flag.NewFlagSet("kubelet", flag.ExitOnError)
	var r kubeletask.Request
	fs.StringVar(&r.Host, "host", "", "the kubelet's address, as the harness discovered it from the cluster")
	fs.IntVar(&r.SecurePort, "port", 10250, "the kubelet's secure port")
	fs.IntVar(&r.ReadOnlyPort, "read-only-port", 10255, "the kubelet's read-only port")
	tokenFile := fs.String("token-file", serviceAccountToken, "a token to ask with too, when the file exists")
	_ = fs.Parse(args)
	if r.Host == "" {
		fmt.Fprintln(os.Stderr, "kwc-probe kubelet: --host is required")
		os.Exit(2)
	}
	if b, err := os.ReadFile(*tokenFile); err == nil {
		r.Token = strings.TrimSpace(string(b))
	}
	emit(os.Stdout, kubeletask.Ask(context.Background(), r))
}

func readSpec(p string) (probespec.Spec, error) {
	var r io.Reader = os.Stdin
	if p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return probespec.Spec{}, fmt.Errorf("opening the spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	var s probespec.Spec
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return probespec.Spec{}, fmt.Errorf("decoding the spec: %w", err)
	}
	if s.Marker == "" || s.TempDir == "" {
		return probespec.Spec{}, fmt.Errorf("the spec needs marker and tempDir")
	}
	return s, nil
}

func emit(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "kwc-probe: encoding: %v\n", err)
		os.Exit(1)
	}
}
