// Package aptrepo builds, in Go, a tiny Debian package and a flat apt repository
// holding it, so `sudo apt-get install` can be tested with no network.
package aptrepo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"time"
)

// Package is one package to build.
type Package struct {
	Name, Version string
	// Script is installed as /usr/bin/<Name>.
	Script string
}

// Hello is the package the sudo and build checks install; running it prints
// HelloOutput.
var Hello = Package{
	Name:    "kwc-hello",
	Version: "1.0.0",
	Script:  "#!/bin/sh\necho 'kwc-hello from a Debian package'\n",
}

// HelloOutput is what /usr/bin/kwc-hello prints.
const HelloOutput = "kwc-hello from a Debian package"

// Deb returns the package as a .deb (ar archive of debian-binary, control.tar.gz,
// data.tar.gz), readable by dpkg, busybox dpkg and apt.
func (p Package) Deb() ([]byte, error) {
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: kwc <kwc@localhost>\nSection: misc\nPriority: optional\nDescription: kwc test package\n kwc builds this package to test package installs without a network.\n", p.Name, p.Version)
	controlTar, err := targz(map[string]tarEntry{"./control": {mode: 0o644, data: []byte(control)}})
	if err != nil {
		return nil, err
	}
	dataTar, err := targz(map[string]tarEntry{
		"./usr/":              {dir: true, mode: 0o755},
		"./usr/bin/":          {dir: true, mode: 0o755},
		"./usr/bin/" + p.Name: {mode: 0o755, data: []byte(p.Script)},
	})
	if err != nil {
		return nil, err
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", controlTar}, {"data.tar.gz", dataTar}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		ar.Write(m.data)
		if len(m.data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes(), nil
}

// Repo returns the files of a flat repository ("deb [trusted=yes] file:/dir ./"):
// the .deb, Packages and Release.
func Repo(pkgs ...Package) (map[string][]byte, error) {
	out := map[string][]byte{}
	var index bytes.Buffer
	for _, p := range pkgs {
		deb, err := p.Deb()
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", p.Name, err)
		}
		file := fmt.Sprintf("%s_%s_all.deb", p.Name, p.Version)
		out[file] = deb
		fmt.Fprintf(&index, "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: kwc <kwc@localhost>\nFilename: ./%s\nSize: %d\nMD5sum: %x\nSHA256: %x\nSection: misc\nPriority: optional\nDescription: kwc test package\n\n",
			p.Name, p.Version, file, len(deb), md5.Sum(deb), sha256.Sum256(deb))
	}
	out["Packages"] = index.Bytes()
	out["Release"] = []byte(fmt.Sprintf("Origin: kwc\nLabel: kwc\nSuite: kwc\nCodename: kwc\nDate: %s\nArchitectures: all amd64\nSHA256:\n %x %d Packages\n",
		time.Unix(0, 0).UTC().Format(time.RFC1123), sha256.Sum256(index.Bytes()), index.Len()))
	return out, nil
}

type tarEntry struct {
	dir  bool
	mode int64
	data []byte
}

func targz(entries map[string]tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	// Parents first: tar readers expect directories before their contents.
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sortByLen(names)
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{Name: n, Mode: e.mode, ModTime: time.Unix(0, 0), Uname: "root", Gname: "root"}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, bytes.NewReader(e.data)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sortByLen(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (len(s[j]) < len(s[j-1]) || len(s[j]) == len(s[j-1]) && s[j] < s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
