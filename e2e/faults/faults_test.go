//go:build faults

// Package faults kills conformance runs at chosen phases and checks that `kwc cleanup
// --run <id>` leaves the host as it was: the fault test of issue 10. It runs the
// docker-target suite for real, so it needs what make e2e TARGET=docker needs (root,
// an engine at DOCKER_HOST, the workspace image buildable).
//
//	go test -tags faults -timeout 3h ./e2e/faults -faults.runs 20
package faults

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/clusters/leftovers"
	"kwc.dev/kwc/internal/reporting/report"
)

var (
	runs      = flag.Int("faults.runs", 2, "how many runs to kill (phases and signals cycle)")
	onlyPhase = flag.String("faults.phases", "", "comma-separated phase names to cycle through (default: all)")
)

// phase is a point in a run to kill it at: the first output line matching marker,
// then delay.
type phase struct {
	name   string
	marker *regexp.Regexp
	delay  time.Duration
}

// phases, in the order runs cycle through them: the first two are the short round
// make test runs (the kills issue 10 measured leaks after).
var phases = []phase{
	{"canaries planted", regexp.MustCompile(`node agent: planted`), 0},
	{"lane mid-probe", regexp.MustCompile(`reaches nothing planted on the node`), 1 * time.Second},
	{"image build", regexp.MustCompile(`kwc: building 127\.0\.0\.1/kwc/workspace`), 10 * time.Second},
	{"lane mid-build", regexp.MustCompile(`builds every Dockerfile fixture`), 8 * time.Second},
	{"report writing", regexp.MustCompile(`\[ReportAfterSuite\] kwc conformance report`), 0},
}

// settle is how long objects may take to go by themselves after cleanup.
const settle = 20 * time.Second

// workspaceImage is the default config's workspace image.
const workspaceImage = "127.0.0.1/kwc/workspace:dev"

var runLine = regexp.MustCompile(`kwc: run ([0-9a-f]{6}): target`)

func TestKilledRunsLeaveNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the fault test runs the docker-target suite, which plants canaries on the host: run it as root")
	}
	engine, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		t.Fatalf("no engine at DOCKER_HOST: %v (eval \"$(hack/engine.sh start)\")", err)
	}
	// The engine mounts its own default network namespace on its first host-network
	// container: make it before the first inventory, so it is not taken for a run's
	// leftover.
	prime(t, engine)
	bin := t.TempDir()
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	build(t, repo, "test", "-c", "-tags", "e2e", "-o", filepath.Join(bin, "e2e.test"), "./e2e")
	build(t, repo, "build", "-o", filepath.Join(bin, "kwc"), "./cmd/kwc")
	reports := t.TempDir()

	cycle := phases
	if *onlyPhase != "" {
		cycle = nil
		for _, p := range phases {
			if strings.Contains(","+*onlyPhase+",", ","+p.name+",") {
				cycle = append(cycle, p)
			}
		}
		if len(cycle) == 0 {
			t.Fatalf("-faults.phases %q names no phase", *onlyPhase)
		}
	}
	leaks, kills := 0, 0
	for i := range *runs {
		ph := cycle[i%len(cycle)]
		sig := []syscall.Signal{syscall.SIGKILL, syscall.SIGINT}[(i/len(cycle))%2]
		if ph.name == "image build" {
			// A warm engine builds the image from its layer cache in no time: remove the
			// image and every unused layer (the Debian base is re-imported from .cache),
			// so the kill lands in a real build.
			if _, err := engine.ImageRemove(ctx, workspaceImage, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				t.Logf("removing %s to force a build: %v", workspaceImage, err)
			}
			if _, err := engine.ImagePrune(ctx, client.ImagePruneOptions{Filters: client.Filters{}.Add("dangling", "false")}); err != nil {
				t.Logf("pruning the layer cache to force a build: %v", err)
			}
		}
		began := time.Now()
		before, err := leftovers.Inventory(ctx, engine, began)
		if err != nil {
			t.Fatal(err)
		}
		id, killed := killAt(t, repo, bin, reports, ph, sig)
		if id == "" {
			t.Fatalf("run %d: the suite never printed its run id", i+1)
		}
		if killed {
			kills++
		}
		out, err := exec.Command(filepath.Join(bin, "kwc"), "cleanup", "--run", id).CombinedOutput()
		if err != nil {
			t.Errorf("run %d (%s): kwc cleanup --run %s failed: %v\n%s", i+1, id, id, err, out)
		}
		// Killed processes are reaped, and a removed container's shim exits, a moment
		// later: what is still there after settle is left behind.
		var left []string
		for deadline := time.Now().Add(settle); ; time.Sleep(time.Second) {
			after, err := leftovers.Inventory(ctx, engine, began)
			if err != nil {
				t.Fatal(err)
			}
			left = leftovers.Diff(before, after)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			leaks++
			t.Errorf("run %d (%s), %s at %q: after kwc cleanup the host has %d new object(s):\n  %s\ncleanup said:\n%s",
				i+1, id, sig, ph.name, len(left), strings.Join(left, "\n  "), out)
		} else {
			t.Logf("run %d (%s): %s at %q (%v): nothing left; cleanup said: %s", i+1, id, sig, ph.name, killed, strings.TrimSpace(strings.ReplaceAll(string(out), "\n", "; ")))
		}
		checkReport(t, reports, id)
	}
	t.Logf("fault test: %d runs, %d killed at their phase, %d leaked", *runs, kills, leaks)
	if kills == 0 {
		t.Fatal("no run was killed at its phase: the test proved nothing")
	}
}

func build(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// killAt runs the suite and sends sig to its process group at phase ph. It returns
// the run id and whether the phase was reached (a run that ended first is not a kill).
func killAt(t *testing.T, repo, bin, reports string, ph phase, sig syscall.Signal) (string, bool) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "e2e.test"), "-ginkgo.v", "-ginkgo.no-color", "-ginkgo.timeout=1h",
		"--kwc.target=docker", "--kwc.reports-dir="+reports)
	cmd.Dir = filepath.Join(repo, "e2e")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	log, _ := os.Create(filepath.Join(reports, fmt.Sprintf("run-%d.log", time.Now().UnixNano())))
	defer log.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	id, reached := "", false
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if m := runLine.FindStringSubmatch(line); m != nil && id == "" {
			id = m[1]
		}
		if !reached && ph.marker.MatchString(line) {
			reached = true
			time.Sleep(ph.delay)
			_ = syscall.Kill(-cmd.Process.Pid, sig)
			if sig == syscall.SIGINT {
				// Ginkgo cleans up on the first interrupt; give it time, then insist.
				go func() {
					time.Sleep(3 * time.Minute)
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}()
			}
		}
	}
	<-done
	// A SIGKILLed group may leave children that outlive the suite's own process.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return id, reached
}

// checkReport: whatever the kill, the run's conformance.json is absent or whole.
func checkReport(t *testing.T, reports, id string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(reports, "*-"+id, "conformance.json"))
	for _, p := range matches {
		if _, err := report.Read(p); err != nil {
			t.Errorf("the killed run left a report that does not read: %v", err)
		}
	}
	tmp, _ := filepath.Glob(filepath.Join(reports, "*-"+id, ".*.tmp"))
	if len(tmp) > 0 {
		t.Logf("temporary report files left by the kill (harmless, never read): %v", tmp)
	}
}

// prime has the engine run and remove one host-network container of the workspace
// image, if the engine has it (a cold engine makes its namespace during the first run
// instead).
func prime(t *testing.T, engine *client.Client) {
	t.Helper()
	ctx := context.Background()
	if _, err := engine.ImageInspect(ctx, workspaceImage); err != nil {
		return
	}
	c, err := engine.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: workspaceImage, Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{NetworkMode: "host"}})
	if err != nil {
		t.Logf("priming the engine: %v", err)
		return
	}
	_, _ = engine.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	_, _ = engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	// gVisor keeps a network namespace of its own for network-none sandboxes, made on
	// its first one.
	info, err := engine.Info(ctx, client.InfoOptions{})
	if _, ok := info.Info.Runtimes["runsc"]; err != nil || !ok {
		return
	}
	c, err = engine.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: workspaceImage, Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{NetworkMode: "none", Runtime: "runsc"}})
	if err != nil {
		t.Logf("priming runsc: %v", err)
		return
	}
	_, _ = engine.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	_, _ = engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
}
