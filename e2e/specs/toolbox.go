// Package specs holds kwc's criteria as reusable spec functions (XxxSpec with an input
// getter), registered once per lane by the suite.
package specs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/images/aptrepo"
	"kwc.dev/kwc/internal/target"
)

// Paths inside the workspace.
const (
	workDir     = "/tmp/kwc"
	baseTarPath = workDir + "/base.tar"
	buildDir    = workDir + "/build"
	outDir      = workDir + "/out"
)

// Toolbox prepares and remembers the container tools of one workspace: the daemon
// started once, the fixture base loaded once per tool, the images each tool built.
type Toolbox struct {
	sh       framework.Shell
	baseRef  string
	baseTar  []byte
	fixtures []dockerfiles.Fixture

	mu       sync.Mutex
	copied   error
	didCopy  bool
	ready    map[string]toolReady
	built    map[string]string // tool/fixture -> local image ref
	timeouts Timeouts
	// hostNetwork is set for lanes in the host's network namespace.
	hostNetwork bool
}

// Timeouts bound the toolbox's commands.
type Timeouts struct {
	Exec, Fixture time.Duration
}

type step struct{ label, script string }

type toolReady struct {
	err      error
	evidence string
}

// NewToolbox prepares a toolbox; nothing runs until a tool is asked for.
func NewToolbox(ws target.Workspace, baseRef string, baseTar []byte, fixtures []dockerfiles.Fixture, t Timeouts) *Toolbox {
	return &Toolbox{sh: framework.Shell{WS: ws}, baseRef: baseRef, baseTar: baseTar, fixtures: fixtures,
		ready: map[string]toolReady{}, built: map[string]string{}, timeouts: t,
		hostNetwork: ws.Lane().Network == config.NetworkHost}
}

// BaseRef is the fixture base's reference, as each tool knows it after loading.
func (t *Toolbox) BaseRef() string { return t.baseRef }

// Shell is the workspace shell the toolbox uses.
func (t *Toolbox) Shell() framework.Shell { return t.sh }

// copyInputs puts the base tarball and every fixture's context into the workspace once.
func (t *Toolbox) copyInputs(ctx context.Context) error {
	if t.didCopy {
		return t.copied
	}
	t.didCopy = true
	files := map[string][]byte{"base.tar": t.baseTar}
	deb, err := aptrepo.Hello.Deb()
	if err != nil {
		t.copied = err
		return err
	}
	for _, f := range t.fixtures {
		err := fs.WalkDir(f.Context, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(f.Context, p)
			files[path.Join("build", f.Name, p)] = b
			return err
		})
		if err != nil {
			t.copied = fmt.Errorf("reading fixture %s: %w", f.Name, err)
			return t.copied
		}
		for _, g := range f.Expect.Generated {
			if g != "kwc-hello.deb" {
				t.copied = fmt.Errorf("fixture %s: no generator for %q", f.Name, g)
				return t.copied
			}
			files[path.Join("build", f.Name, g)] = deb
		}
	}
	t.copied = t.sh.CopyFiles(ctx, workDir, files, 0o644)
	if t.copied == nil {
		r, err := t.sh.Sh(ctx, t.timeouts.Exec, "mkdir -p "+outDir+" && chmod 0777 "+outDir)
		if err != nil || !r.OK() {
			t.copied = fmt.Errorf("preparing %s: %v %s", outDir, err, r.Stderr)
		}
	}
	return t.copied
}

// Ensure makes a tool usable (daemon up, base loaded) and returns what that took, as
// evidence. unusable says the tool does not work in this workspace (a finding); err
// says the harness could not find out (the spec fails, the criterion is not judged).
func (t *Toolbox) Ensure(ctx context.Context, tool string) (evidence string, unusable, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.ready[tool]; ok {
		return r.evidence, r.err, nil
	}
	if err := t.copyInputs(ctx); err != nil {
		return "", nil, fmt.Errorf("copying inputs into the workspace: %w", err)
	}
	var steps []step
	switch tool {
	case "docker":
		// The daemon's data lives on the volume at /var/lib/docker; no NAT is needed, the
		// nested containers never leave the workspace. In the host's network namespace
		// it must not make a bridge there. Whether a daemon answers is asked of the
		// socket: with the host's PID namespace, pgrep would find the host's dockerd.
		bridge := ""
		if t.hostNetwork {
			bridge = " --bridge=none"
		}
		steps = []step{
			{"start dockerd", "docker info >/dev/null 2>&1 || (nohup dockerd -H " + target.NestedDockerHost + " --iptables=false --ip6tables=false" + bridge + " >" + workDir + "/dockerd.log 2>&1 &)"},
			{"wait for dockerd", "i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); if [ $i -gt 60 ]; then echo 'dockerd did not come up in 30 s:'; grep -E 'failed to start|level=(error|fatal)' " + workDir + "/dockerd.log | tail -n 3; exit 1; fi; sleep 0.5; done; docker version --format 'dockerd {{.Server.Version}}'"},
			{"load the base", "docker load -i " + baseTarPath},
		}
	case "podman":
		steps = []step{{"podman", "podman --version"}, {"load the base", "podman load -i " + baseTarPath}}
	case "buildah":
		steps = []step{{"buildah", "buildah --version"}, {"load the base", "buildah pull --quiet docker-archive:" + baseTarPath + " && buildah images"}}
	default:
		return "", nil, fmt.Errorf("unknown tool %q", tool)
	}
	var results []target.ExecResult
	for _, s := range steps {
		r, err := t.sh.Sudo(ctx, t.timeouts.Fixture, s.script)
		results = append(results, r)
		if err != nil {
			return framework.Evidence(results...), nil, err
		}
		if !r.OK() {
			unusable = fmt.Errorf("%s: exit %d: %s", s.label, r.ExitCode, lastLine(r.Stdout+r.Stderr))
			break
		}
	}
	ev := framework.Evidence(results...)
	t.ready[tool] = toolReady{err: unusable, evidence: ev}
	return ev, unusable, nil
}

// BuiltImage is one fixture built by one tool and saved as an archive.
type BuiltImage struct {
	LocalRef string
	Image    v1.Image
	Evidence string
}

// BuildFixture builds fixture f with tool, saves it as a docker archive and copies it
// out. A build that fails is a finding (err is nil, Image is nil, Evidence says why);
// err is reserved for the harness failing to observe.
func (t *Toolbox) BuildFixture(ctx context.Context, tool string, f dockerfiles.Fixture, scratch string) (BuiltImage, error) {
	ref := "127.0.0.1/kwc-fixture/" + f.Name + ":" + tool
	dir := buildDir + "/" + f.Name
	args := "--build-arg BASE=" + t.baseRef
	for k, v := range f.Expect.BuildArgs {
		args += " --build-arg " + k + "=" + v
	}
	archive := outDir + "/" + f.Name + "-" + tool + ".tar"
	var build, save string
	switch tool {
	case "docker":
		build = "DOCKER_BUILDKIT=0 docker build --network=none " + args + " -t " + ref + " " + dir
		save = "docker save -o " + archive + " " + ref
	case "podman":
		build = "podman build --pull=never --network=none " + args + " -t " + ref + " " + dir
		save = "podman save --format docker-archive -o " + archive + " " + ref
	case "buildah":
		build = "buildah bud --pull=never --layers --network=none " + args + " -t " + ref + " " + dir
		save = "buildah push " + ref + " docker-archive:" + archive + ":" + ref
	default:
		return BuiltImage{}, fmt.Errorf("unknown tool %q", tool)
	}
	out := BuiltImage{LocalRef: ref}
	var results []target.ExecResult
	for _, step := range []string{build, save + " && chmod 0644 " + archive} {
		r, err := t.sh.Sudo(ctx, t.timeouts.Fixture, step)
		results = append(results, r)
		out.Evidence = framework.Evidence(results...)
		if err != nil {
			return out, err
		}
		if !r.OK() {
			return out, nil
		}
	}
	img, err := t.copyOutImage(ctx, archive, filepath.Join(scratch, f.Name+"-"+tool+".tar"))
	if err != nil {
		out.Evidence += "copying the archive out: " + err.Error() + "\n"
		return out, err
	}
	out.Image = img
	t.mu.Lock()
	t.built[tool+"/"+f.Name] = ref
	t.mu.Unlock()
	return out, nil
}

// Built returns the local ref of a fixture a tool built earlier in this workspace.
func (t *Toolbox) Built(tool, fixture string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.built[tool+"/"+fixture]
	return r, ok
}

func (t *Toolbox) copyOutImage(ctx context.Context, archive, local string) (v1.Image, error) {
	rc, err := t.sh.WS.CopyOut(ctx, archive)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the copied archive: %w", err)
	}
	if h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s is not a regular file", archive)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(local)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, tr); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	img, err := tarball.ImageFromPath(local, nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s as an image archive: %w", local, err)
	}
	return img, nil
}

// toolChecks runs one check per tool and case. A tool that cannot be made usable
// fails each of its cases with the reason, so the report shows "buildah works, dockerd
// does not" case by case; an error observing a check fails the spec.
func toolChecks(ctx context.Context, s *framework.Suite, tb *Toolbox, lane config.Lane, criterion string, tools, cases []string, check func(tool string, i int) (verdict.Check, error)) []verdict.Check {
	var out []verdict.Check
	for _, tool := range tools {
		setup, unusable, err := tb.Ensure(ctx, tool)
		s.Observed(lane, criterion, "preparing "+tool, err, out...)
		for i, name := range cases {
			c, err := runCheck(ctx, criterion+"/"+tool+"/"+name, func() (verdict.Check, error) {
				if unusable != nil {
					return verdict.Check{Verdict: verdict.Fail, Reason: tool + " is not usable in this workspace: " + unusable.Error(), Evidence: setup}, nil
				}
				return check(tool, i)
			})
			s.Observed(lane, criterion, "observing "+tool+" "+name, err, out...)
			c.Tool, c.Case = tool, name
			out = append(out, c)
		}
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// archiveOf makes a docker archive of img tagged ref, for loading into a workspace.
func archiveOf(img v1.Image, ref string) ([]byte, error) {
	tag, err := parseTag(ref)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return nil, fmt.Errorf("writing the base archive: %w", err)
	}
	return buf.Bytes(), nil
}
