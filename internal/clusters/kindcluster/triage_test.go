package kindcluster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// fakeNode answers every command with its script and records what it was asked.
type fakeNode struct {
	name  string
	asked [][]string
	fail  string // a File whose command fails
}

type fakeCmd struct {
	out  io.Writer
	text string
	err  error
}

func (c *fakeCmd) Run() error {
	io.WriteString(c.out, c.text)
	return c.err
}
func (c *fakeCmd) SetEnv(...string) kindexec.Cmd      { return c }
func (c *fakeCmd) SetStdin(io.Reader) kindexec.Cmd    { return c }
func (c *fakeCmd) SetStdout(w io.Writer) kindexec.Cmd { c.out = w; return c }
func (c *fakeCmd) SetStderr(io.Writer) kindexec.Cmd   { return c }

func (n *fakeNode) Command(name string, args ...string) kindexec.Cmd {
	return n.CommandContext(context.Background(), name, args...)
}
func (n *fakeNode) CommandContext(_ context.Context, name string, args ...string) kindexec.Cmd {
	n.asked = append(n.asked, append([]string{name}, args...))
	c := &fakeCmd{text: "output of " + strings.Join(args, " ")}
	if n.fail != "" && strings.Contains(strings.Join(args, " "), n.fail) {
		c.err = errors.New("exit status 1")
	}
	return c
}
func (n *fakeNode) String() string              { return n.name }
func (n *fakeNode) Role() (string, error)       { return "control-plane", nil }
func (n *fakeNode) IP() (string, string, error) { return "", "", nil }
func (n *fakeNode) SerialLogs(io.Writer) error  { return nil }

// Each node gets one file per triage step, headed by why it matters; a step that
// fails is reported and the rest still run.
func TestKataTriageWritesEveryStepPerNode(t *testing.T) {
	dir := t.TempDir()
	a, b := &fakeNode{name: "kwc-1-control-plane"}, &fakeNode{name: "kwc-1-worker", fail: "journalctl"}
	err := collectTriage(context.Background(), []nodes.Node{a, b}, dir)
	if err == nil || !strings.Contains(err.Error(), "kata-shim.log on kwc-1-worker") {
		t.Fatalf("the failed step must be named: %v", err)
	}
	for _, n := range []*fakeNode{a, b} {
		if len(n.asked) != len(KataTriage) {
			t.Errorf("%s: %d commands, want %d", n.name, len(n.asked), len(KataTriage))
		}
		for _, s := range KataTriage {
			got, err := os.ReadFile(filepath.Join(dir, n.name, s.File))
			if err != nil || !strings.HasPrefix(string(got), "# "+s.Why) || !strings.Contains(string(got), "output of") {
				t.Errorf("%s/%s: %q, %v", n.name, s.File, got, err)
			}
		}
	}
}

// What the issue names as a first failure's needs is all there, and every step only
// reads: no command that writes, moves, kills or mounts.
func TestKataTriageCoversTheKnownFailuresAndOnlyReads(t *testing.T) {
	all := ""
	for _, s := range KataTriage {
		all += strings.Join(s.Args, " ") + "\n"
	}
	for _, want := range []string{"kata-deploy", "/etc/containerd", "/dev/shm", "/dev/kvm", "/dev/vhost-vsock", "journalctl -t kata", "qemu-system", "virtiofsd"} {
		if !strings.Contains(all, want) {
			t.Errorf("the triage never looks at %s", want)
		}
	}
	// Discarding errors is the one redirection allowed.
	writes := strings.ReplaceAll(all, "2>/dev/null", "")
	for _, bad := range []string{"rm ", "mv ", "kill", "mount -", "umount", "> /", ">/", "tee ", "dd "} {
		if strings.Contains(writes, bad) {
			t.Errorf("a triage step contains %q: triage must only read", bad)
		}
	}
}
