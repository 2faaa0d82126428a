package nodeimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The image's tag is the hash of its inputs: equal inputs, equal hash; a changed byte,
// mode or base, another hash.
func TestHashTreeIsTheInputsIdentity(t *testing.T) {
	dir := t.TempDir()
	write := func(p, body string, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM x\n", 0o644)
	write("bin/kubelet", "binary", 0o755)
	h := func(extra ...string) string {
		t.Helper()
		s, err := hashTree(dir, archiveFile, extra...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := h("base-1")
	if again := h("base-1"); again != first {
		t.Fatalf("the same inputs hashed %s then %s", first, again)
	}
	if h("base-2") == first {
		t.Error("another base gave the same hash")
	}
	// The control-plane archive is identified by its images' tags and digests (an
	// extra): its bytes change with the order entries are written in.
	write(archiveFile, "one order", 0o644)
	if h("base-1") != first {
		t.Error("the archive's bytes changed the hash")
	}
	write(archiveFile, "another order", 0o644)
	if h("base-1") != first {
		t.Error("the archive's bytes changed the hash")
	}
	write("bin/kubelet", "binarz", 0o755)
	if h("base-1") == first {
		t.Error("a changed binary gave the same hash")
	}
	write("bin/kubelet", "binary", 0o644)
	if h("base-1") == first {
		t.Error("a changed mode gave the same hash")
	}
}

// A missing binary or kind folder is named with how to make it, before any build.
func TestAssembleNamesWhatIsMissing(t *testing.T) {
	kind := t.TempDir()
	if err := assemble(t.TempDir(), Build{KindDir: kind, BinDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "kind's base files") {
		t.Errorf("a kind folder without images/base/files: %v", err)
	}
	entry := filepath.Join(kind, "images", "base", "files", "usr", "local", "bin", "entrypoint")
	if err := os.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entry, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := assemble(t.TempDir(), Build{KindDir: kind, BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "containerd is missing") || !strings.Contains(err.Error(), "make node-image") {
		t.Errorf("an empty binary folder: %v", err)
	}
}

// Every file the Dockerfile copies is in the context: kwc's own files, the binaries, and
// kind's base files as the kind module kwc builds with lays them out.
func TestTheDockerfileCopiesWhatTheContextHas(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kind").Output()
	if err != nil {
		t.Fatalf("finding the kind module: %v", err)
	}
	kind := strings.TrimSpace(string(out))
	bins := t.TempDir()
	for _, b := range nodeBinaries {
		_ = os.WriteFile(filepath.Join(bins, b), []byte("x"), 0o755)
	}
	if err := assemble(dir, Build{KindDir: kind, BinDir: bins}); err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if strings.HasPrefix(src, "images/") {
				continue // written by step 2
			}
			if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
				t.Errorf("the Dockerfile copies %s, which the context lacks: %v", src, err)
			}
		}
	}
}
