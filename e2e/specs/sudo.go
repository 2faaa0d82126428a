package specs

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/images/aptrepo"
	"kwc.dev/kwc/internal/target"
)

// SudoSpecInput is what SudoSpec needs.
type SudoSpecInput struct {
	Suite     *framework.Suite
	Lane      config.Lane
	Workspace target.Workspace
}

// SudoSpec checks that the non-root workspace user gets root through sudo: sudo -n,
// a root-only change, and apt-get update/install from a local repository. Never from
// the image's own sources: a lane with network shares the node's network namespace
// (C2), and kwc sends no traffic from there.
func SudoSpec(inputGetter func() SudoSpecInput) {
	It("gives the workspace user root through sudo: sudo -n, a root-only change, apt-get update and install", framework.Label(framework.LabelSudo), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Suite).NotTo(BeNil(), "Invalid argument. input.Suite can't be nil when calling SudoSpec")
		Expect(in.Workspace).NotTo(BeNil(), "Invalid argument. input.Workspace can't be nil when calling SudoSpec: the lane's workspace did not start")
		sh := framework.Shell{WS: in.Workspace}
		tmo := in.Suite.Config.Interval("sudo", "exec")
		aptTmo := in.Suite.Config.Interval("sudo", "apt")
		token := "kwc-" + in.Suite.RunID

		var checks []verdict.Check
		add := func(c verdict.Check, err error) {
			in.Suite.Observed(in.Lane, "sudo", "observing check "+c.ID, err, checks...)
			checks = append(checks, c)
		}
		add(runCheck(ctx, "workspace-user-is-not-root", func() (verdict.Check, error) {
			r, err := sh.Sh(ctx, tmo, "id -u; id -g")
			c := verdict.Check{Evidence: framework.Evidence(r)}
			want := fmt.Sprintf("%d\n%d", framework.WorkspaceUID, framework.WorkspaceGID)
			c.Verdict, c.Reason = judge(r.OK() && strings.TrimSpace(r.Stdout) == want, "the workspace user must be uid 5001, gid 0 (GitLab's layout); sudo means nothing for root")
			return c, err
		}))
		add(runCheck(ctx, "sudo-n-gives-uid-0", func() (verdict.Check, error) {
			r, err := sh.WS.Exec(ctx, target.ExecRequest{Cmd: []string{"sudo", "-n", "id", "-u"}, Timeout: tmo})
			c := verdict.Check{Evidence: framework.Evidence(r)}
			c.Verdict, c.Reason = judge(r.OK() && strings.TrimSpace(r.Stdout) == "0", "sudo -n id -u did not print 0")
			return c, err
		}))
		add(runCheck(ctx, "root-only-change", func() (verdict.Check, error) {
			file := "/etc/kwc-sudo-" + in.Suite.RunID
			denied, err := sh.Sh(ctx, tmo, "touch "+file)
			if err != nil {
				return verdict.Check{}, err
			}
			done, err := sh.Sudo(ctx, tmo, "echo "+token+" > "+file+" && chmod 0600 "+file+" && cat "+file+" && rm -f "+file)
			c := verdict.Check{Evidence: framework.Evidence(denied, done)}
			switch {
			case denied.OK():
				c.Verdict, c.Reason = verdict.Fail, "the user could write /etc without sudo, so the check proves nothing about sudo"
				_, _ = sh.Sudo(ctx, tmo, "rm -f "+file)
			default:
				c.Verdict, c.Reason = judge(done.OK() && strings.TrimSpace(done.Stdout) == token, "writing a root-only file in /etc through sudo failed")
			}
			return c, err
		}))
		add(runCheck(ctx, "apt-local-repository", func() (verdict.Check, error) {
			return aptLocal(ctx, sh, tmo, aptTmo)
		}))
		crit := verdict.AllChecks(checks)
		in.Suite.Record(in.Lane, "sudo", crit)
		framework.ExpectCriterion(in.Lane, "sudo", crit)
	})
}

// aptLocal installs kwc-hello from a flat file: repository copied into the workspace,
// with apt told to read only that source (the image's own sources need a network).
func aptLocal(ctx context.Context, sh framework.Shell, tmo, aptTmo time.Duration) (verdict.Check, error) {
	files, err := aptrepo.Repo(aptrepo.Hello)
	if err != nil {
		return verdict.Check{}, err
	}
	const repo = "/tmp/kwc/apt"
	if err := sh.CopyFiles(ctx, repo, files, 0o644); err != nil {
		return verdict.Check{}, err
	}
	list := "/etc/apt/sources.list.d/kwc-local.list"
	only := "-o Dir::Etc::SourceList=" + list + " -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=0"
	var results []target.ExecResult
	for _, step := range []struct {
		sudo   bool
		script string
		tmo    time.Duration
	}{
		{true, "echo 'deb [trusted=yes] file:" + repo + " ./' > " + list, tmo},
		{true, "apt-get " + only + " update", aptTmo},
		{true, "DEBIAN_FRONTEND=noninteractive apt-get " + only + " install -y --no-install-recommends " + aptrepo.Hello.Name, aptTmo},
		{false, aptrepo.Hello.Name, tmo},
	} {
		run := sh.Sh
		if step.sudo {
			run = sh.Sudo
		}
		r, err := run(ctx, step.tmo, step.script)
		results = append(results, r)
		if err != nil {
			return verdict.Check{}, err
		}
		if !r.OK() {
			break
		}
	}
	last := results[len(results)-1]
	c := verdict.Check{Evidence: framework.Evidence(results...)}
	c.Verdict, c.Reason = judge(len(results) == 4 && last.OK() && strings.TrimSpace(last.Stdout) == aptrepo.HelloOutput,
		"sudo apt-get update/install from the local repository did not give a working kwc-hello")
	return c, nil
}

// runCheck times a check and names it.
func runCheck(_ context.Context, id string, f func() (verdict.Check, error)) (verdict.Check, error) {
	start := time.Now()
	c, err := f()
	c.ID = id
	c.DurationSeconds = time.Since(start).Round(time.Millisecond).Seconds()
	return c, err
}

func judge(ok bool, failReason string) (config.Verdict, string) {
	if ok {
		return verdict.Pass, ""
	}
	return verdict.Fail, failReason
}
