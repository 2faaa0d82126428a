package mounts

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A scratch folder with a bind mount of something precious under it: RemoveTree
// refuses, DetachAndRemove detaches first and the precious file survives (issue 10:
// os.RemoveAll of the probe's folder would walk into a mount a late probe still held).
func TestNothingMountedIsEverWalkedInto(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting needs root (make test runs as root)")
	}
	precious := t.TempDir()
	if err := os.WriteFile(filepath.Join(precious, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(t.TempDir(), "kwc-probe-abcdef")
	m := filepath.Join(scratch, "cg-memory")
	if err := os.MkdirAll(m, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(precious, m, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(m, unix.MNT_DETACH) })
	under, err := Under(scratch)
	if err != nil || len(under) != 1 || under[0] != m {
		t.Fatalf("Under(%s) = %v, %v", scratch, under, err)
	}
	if err := RemoveTree(scratch); err == nil {
		t.Fatal("RemoveTree removed a folder with a mount under it")
	}
	if err := DetachAndRemove(scratch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Fatalf("the scratch folder is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(precious, "keep")); err != nil {
		t.Fatalf("what was mounted under the scratch folder was deleted: %v", err)
	}
}
