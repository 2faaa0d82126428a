package vmguest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cpio(1) is the reference reader: the kernel unpacks what it lists.
func TestInitramfsHoldsInitAndConsole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "initrd")
	if err := Initramfs([]byte("#!/bin/true\n"), p); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio(1) is needed to read the initramfs back (make deps installs it): %v", err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("cpio", "-itv")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	list := string(out)
	for _, want := range []string{" init", "dev/console", "proc", "sys"} {
		if !strings.Contains(list, want) {
			t.Errorf("initramfs lacks %s:\n%s", want, list)
		}
	}
	if !strings.Contains(list, "crw") {
		t.Errorf("dev/console must be a character device:\n%s", list)
	}
}
