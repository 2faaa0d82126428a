// kwc-probe runs kwc's escape probes where it is started (a workspace, a nested
// container, a VM, the node itself) and prints what it observed as JSON. It is told
// where to look, never the secrets; the harness decides every verdict.
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

	"kwc.dev/kwc/internal/probe"
	"kwc.dev/kwc/internal/probespec"
)

func main() {
	if os.Getpid() == 1 {
		vmInit()
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
