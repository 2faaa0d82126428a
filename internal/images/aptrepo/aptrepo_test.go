package aptrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dpkg-deb is the reference reader: if it accepts the package and lists the script,
// dpkg, apt and busybox dpkg will too.
func TestDebIsReadableByDpkgDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatalf("dpkg-deb is needed to check the package format: %v", err)
	}
	deb, err := Hello.Deb()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hello.deb")
	if err := os.WriteFile(p, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-deb", "--info", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Package: kwc-hello") {
		t.Fatalf("dpkg-deb --info: %v\n%s", err, out)
	}
	out, err = exec.Command("dpkg-deb", "--contents", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "./usr/bin/kwc-hello") {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", p, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	got, err := exec.Command(filepath.Join(dir, "usr/bin/kwc-hello")).Output()
	if err != nil || strings.TrimSpace(string(got)) != HelloOutput {
		t.Fatalf("running the packaged script: %v, %q", err, got)
	}
}

func TestRepoIndexNamesTheDeb(t *testing.T) {
	files, err := Repo(Hello)
	if err != nil {
		t.Fatal(err)
	}
	idx := string(files["Packages"])
	if !strings.Contains(idx, "Filename: ./kwc-hello_1.0.0_all.deb") || files["kwc-hello_1.0.0_all.deb"] == nil {
		t.Fatalf("index does not point at the package:\n%s", idx)
	}
	if !strings.Contains(string(files["Release"]), " Packages\n") {
		t.Fatalf("Release lacks the Packages checksum:\n%s", files["Release"])
	}
}
