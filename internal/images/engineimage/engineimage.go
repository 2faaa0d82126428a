// Package engineimage makes the images the docker target runs: the Debian base, made
// offline with mmdebstrap and imported, and the workspace image built from
// dockerfiles/workspace by the engine's legacy builder.
package engineimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"github.com/moby/moby/client"
)

// Logf prints a progress line.
type Logf func(format string, args ...any)

// Exists reports whether the engine has ref.
func Exists(ctx context.Context, cli *client.Client, ref string) (bool, string, error) {
	insp, err := cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, insp.ID, nil
	}
	if strings.Contains(strings.ToLower(err.Error()), "no such image") {
		return false, "", nil
	}
	return false, "", fmt.Errorf("inspecting image %s: %w", ref, err)
}

// DebianBase says how to make the workspace's Debian base.
type DebianBase struct {
	Ref    string // e.g. 127.0.0.1/kwc/debian:bookworm
	Suite  string // e.g. bookworm
	Mirror string // empty: the host's apt sources
	// CacheDir keeps the mmdebstrap tarball, so a fresh engine re-imports in seconds.
	CacheDir string
	// Variant and Include choose what mmdebstrap installs; empty means minbase with
	// ca-certificates (what the workspace image builds on). Tests set a smaller set.
	Variant string
	Include []string
	// Name tells apart bases of the same suite in the cache (empty: the workspace's).
	Name string
}

// TarPath is where the base's tarball is cached.
func (b DebianBase) TarPath() string {
	if b.Name != "" {
		return filepath.Join(b.CacheDir, "debian-"+b.Suite+"-"+b.Name+".tar")
	}
	return filepath.Join(b.CacheDir, "debian-"+b.Suite+".tar")
}

// EnsureDebianBase imports the base into the engine unless it is there already.
func EnsureDebianBase(ctx context.Context, cli *client.Client, b DebianBase, logf Logf) (string, error) {
	if ok, id, err := Exists(ctx, cli, b.Ref); err != nil || ok {
		return id, err
	}
	tarPath, err := MakeDebianTar(ctx, b, logf)
	if err != nil {
		return "", err
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", tarPath, err)
	}
	defer f.Close()
	logf("importing %s as %s", tarPath, b.Ref)
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: f, SourceName: "-"}, b.Ref, client.ImageImportOptions{Changes: []string{`CMD ["/bin/bash"]`}})
	if err != nil {
		return "", fmt.Errorf("importing %s into the engine: %w", tarPath, err)
	}
	if err := drain(res, io.Discard); err != nil {
		return "", fmt.Errorf("importing %s: %w", b.Ref, err)
	}
	_, id, err := Exists(ctx, cli, b.Ref)
	return id, err
}

// MakeDebianTar returns the cached tarball of the base, making it with mmdebstrap when
// the cache has no valid one. A cached path that is not a readable tar with a root
// filesystem in it (a folder or a truncated file left by an older run) is made again.
func MakeDebianTar(ctx context.Context, b DebianBase, logf Logf) (string, error) {
	out := b.TarPath()
	if err := checkRootfsTar(out); err == nil {
		return out, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		logf("the cached Debian base %s is unusable (%v): making it again", out, err)
		if err := os.RemoveAll(out); err != nil {
			return "", fmt.Errorf("removing the unusable cached base %s: %w", out, err)
		}
	}
	if err := mmdebstrap(ctx, b, out, logf); err != nil {
		return "", err
	}
	if err := checkRootfsTar(out); err != nil {
		return "", fmt.Errorf("mmdebstrap made %s, but it is not a usable root filesystem tarball: %w", out, err)
	}
	return out, nil
}

// checkRootfsTar says whether path is a regular file holding a tar stream with
// etc/os-release in it: the least a Debian root filesystem has.
func checkRootfsTar(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is a %s, not a tar file", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no etc/os-release", path)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		switch filepath.Clean(h.Name) {
		case "etc/os-release", "usr/lib/os-release":
			return nil
		}
	}
}

// mmdebstrapArgs names the output format explicitly: mmdebstrap picks it from the file
// name otherwise, and the ".partial" name it writes to first made it a directory.
func mmdebstrapArgs(b DebianBase, out string) []string {
	variant, include := b.Variant, b.Include
	if variant == "" {
		variant, include = "minbase", []string{"ca-certificates"}
	}
	args := []string{"--variant=" + variant, "--format=tar"}
	if len(include) > 0 {
		args = append(args, "--include="+strings.Join(include, ","))
	}
	args = append(args, b.Suite, out)
	if b.Mirror != "" {
		args = append(args, b.Mirror)
	}
	return args
}

func mmdebstrap(ctx context.Context, b DebianBase, out string, logf Logf) error {
	bin, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("the Debian base %s is not in the engine and mmdebstrap is missing: apt-get install mmdebstrap (or import a Debian %s rootfs as %s yourself)", b.Ref, b.Suite, b.Ref)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(out), err)
	}
	args := mmdebstrapArgs(b, out+".partial")
	logf("making the Debian %s base with mmdebstrap (about 30-90 s)", b.Suite)
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(out + ".partial")
		return fmt.Errorf("mmdebstrap %s failed: %w\n%s\n  fix: check that apt can reach a Debian mirror (apt-get update), or set images.debianMirror", strings.Join(args, " "), err, logtail.Indent(logtail.Last(log.String(), 15), "    "))
	}
	logf("Debian base made in %s", time.Since(start).Round(time.Second))
	return os.Rename(out+".partial", out)
}

// Build says how to build one image with the engine.
type Build struct {
	Ref     string
	Context fs.FS // the build context; its Dockerfile at the root
	Args    map[string]string
	// HostNetwork lets RUN steps reach Debian's mirror (the only outside address a build
	// may reach).
	HostNetwork bool
	LogPath     string // the full build log is written here
}

// BuildImage builds with the legacy builder (no buildx needed) and never pulls.
func BuildImage(ctx context.Context, cli *client.Client, b Build, logf Logf) (string, error) {
	ctxTar, err := tarFS(b.Context)
	if err != nil {
		return "", fmt.Errorf("packing the build context of %s: %w", b.Ref, err)
	}
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = &v
	}
	opts := client.ImageBuildOptions{Tags: []string{b.Ref}, BuildArgs: args, Remove: true, ForceRemove: true, PullParent: false, Dockerfile: "Dockerfile"}
	if b.HostNetwork {
		opts.NetworkMode = "host"
	}
	logf("building %s (log: %s)", b.Ref, b.LogPath)
	start := time.Now()
	res, err := cli.ImageBuild(ctx, bytes.NewReader(ctxTar), opts)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", b.Ref, err)
	}
	var log bytes.Buffer
	berr := drain(res.Body, &log)
	res.Body.Close()
	if b.LogPath != "" {
		_ = os.MkdirAll(filepath.Dir(b.LogPath), 0o755)
		_ = os.WriteFile(b.LogPath, log.Bytes(), 0o644)
	}
	if berr != nil {
		return "", fmt.Errorf("building %s failed: %w\n%s\n  full log: %s", b.Ref, berr, logtail.Indent(logtail.Last(log.String(), 15), "    "), b.LogPath)
	}
	_, id, err := Exists(ctx, cli, b.Ref)
	if err != nil {
		return "", err
	}
	logf("built %s in %s", b.Ref, time.Since(start).Round(time.Second))
	return id, nil
}

// drain copies the engine's JSON message stream as text and returns its error message.
func drain(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		var m struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			fmt.Fprintln(w, sc.Text())
			continue
		}
		fmt.Fprint(w, m.Stream)
		if m.Status != "" {
			fmt.Fprintln(w, m.Status)
		}
		if m.Error != "" {
			fmt.Fprintln(w, m.Error)
			return fmt.Errorf("%s", strings.TrimSpace(m.Error))
		}
	}
	return sc.Err()
}

func tarFS(fsys fs.FS) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(fsys); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
