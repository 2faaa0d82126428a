package engineimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A machine that has never run kwc has an empty cache: the base must come out as a tar
// file the engine can import. mmdebstrap picks its format from the output's name, and
// the ".partial" name once made it a directory (issue 10). This makes a small base
// (the extract variant with one package) the same way the suite makes the full one.
func TestMakeDebianTarIntoEmptyCache(t *testing.T) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Fatalf("mmdebstrap is missing (make deps installs it): %v", err)
	}
	suite := os.Getenv("KWC_TEST_DEBIAN_SUITE")
	if suite == "" {
		suite = "bookworm"
	}
	b := DebianBase{Suite: suite, CacheDir: filepath.Join(t.TempDir(), "never-used"), Variant: "extract", Include: []string{"base-files"}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := MakeDebianTar(ctx, b, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRootfsTar(out); err != nil {
		t.Fatalf("made %s, but: %v", out, err)
	}
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Errorf("%s.partial is left behind (stat: %v)", out, err)
	}
}

// A directory or a truncated file where the tarball should be (what the old bug left in
// caches) is not taken as a base.
func TestCheckRootfsTarRejectsWhatTheOldBugLeft(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "debian-bookworm.tar")
	if err := os.MkdirAll(filepath.Join(asDir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkRootfsTar(asDir); err == nil {
		t.Error("a directory was accepted as the base tarball")
	}
	junk := filepath.Join(dir, "junk.tar")
	if err := os.WriteFile(junk, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkRootfsTar(junk); err == nil {
		t.Error("a truncated file was accepted as the base tarball")
	}
}

func TestMmdebstrapArgsNameTheFormat(t *testing.T) {
	args := mmdebstrapArgs(DebianBase{Suite: "bookworm"}, "/c/debian-bookworm.tar.partial")
	found := false
	for _, a := range args {
		if a == "--format=tar" {
			found = true
		}
	}
	if !found {
		t.Fatalf("mmdebstrap args %v do not name the tar format", args)
	}
}
