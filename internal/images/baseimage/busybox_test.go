package baseimage

import (
	"archive/tar"
	"io"
	"os"
	"testing"
)

func TestBusyboxImage(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Fatalf("busybox-static is a prerequisite of the fixtures' base (make deps installs it): %v", err)
	}
	img, err := Busybox(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("want one layer, got %d (%v)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	names := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	// The fixtures need a shell, dpkg, httpd, wget, mount and a passwd to append to.
	for _, want := range []string{"bin/busybox", "bin/sh", "bin/dpkg", "bin/httpd", "bin/wget", "bin/mount", "etc/passwd", "var/lib/dpkg/status", "tmp/"} {
		if !names[want] {
			t.Errorf("the base lacks %s", want)
		}
	}
}

func TestDynamicBusyboxIsRefused(t *testing.T) {
	if _, err := Busybox("/bin/ls"); err == nil {
		t.Fatal("a dynamically linked binary cannot be the base's only program")
	}
}
