package specs

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/dockerfiles"
	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/target"
)

// RunSpecInput is what RunSpec needs.
type RunSpecInput struct {
	Suite *framework.Suite
	Lane  config.Lane
	Tools *Toolbox
	// Image is the fixture whose built image the run cases start.
	Image dockerfiles.Fixture
}

// runCase is one way of running a container, the same for every tool.
type runCase struct {
	name string
	run  func(ctx context.Context, tb *Toolbox, tool, token string, tmo time.Duration) ([]target.ExecResult, string, error)
}

// RunSpec runs containers inside the workspace with each configured tool: a built
// image, a volume, a network between two containers, and a nested --privileged one.
func RunSpec(inputGetter func() RunSpecInput) {
	It("runs containers inside the workspace: a built image, with a volume, over a network, nested --privileged", framework.Label(framework.LabelRun), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Suite).NotTo(BeNil(), "Invalid argument. input.Suite can't be nil when calling RunSpec")
		Expect(in.Tools).NotTo(BeNil(), "Invalid argument. input.Tools can't be nil when calling RunSpec: the lane's workspace did not start")
		tmo := in.Suite.Config.Interval("run", "container")
		scratch := GinkgoT().TempDir()
		cases := []runCase{
			{"built-image", func(ctx context.Context, tb *Toolbox, tool, _ string, tmo time.Duration) ([]target.ExecResult, string, error) {
				ref, ok := tb.Built(tool, in.Image.Name)
				var pre []target.ExecResult
				if !ok {
					b, err := tb.BuildFixture(ctx, tool, in.Image, scratch)
					if err != nil {
						return nil, "", err
					}
					if b.Image == nil {
						return nil, "could not build " + in.Image.Name + " to run it:\n" + b.Evidence, nil
					}
					ref = b.LocalRef
				}
				r, err := tb.Shell().Sudo(ctx, tmo, tool+" run --rm --network none "+ref)
				pre = append(pre, r)
				if err != nil || (r.OK() && strings.TrimSpace(r.Stdout) == in.Image.Expect.RunOutput) {
					return pre, "", err
				}
				return pre, fmt.Sprintf("running %s did not print %q", ref, in.Image.Expect.RunOutput), nil
			}},
			{"volume", func(ctx context.Context, tb *Toolbox, tool, token string, tmo time.Duration) ([]target.ExecResult, string, error) {
				dir := workDir + "/vol-" + tool
				script := fmt.Sprintf("mkdir -p %[1]s && echo in-%[2]s > %[1]s/in && %[3]s run --rm --network none -v %[1]s:/data %[4]s sh -c 'cat /data/in && echo out-%[2]s > /data/out' && cat %[1]s/out", dir, token, tool, tb.BaseRef())
				r, err := tb.Shell().Sudo(ctx, tmo, script)
				want := "in-" + token + "\nout-" + token
				if err != nil || (r.OK() && strings.TrimSpace(r.Stdout) == want) {
					return []target.ExecResult{r}, "", err
				}
				return []target.ExecResult{r}, "the container did not read and write the volume", nil
			}},
			{"network", func(ctx context.Context, tb *Toolbox, tool, token string, tmo time.Duration) ([]target.ExecResult, string, error) {
				// Two containers on a network made inside the workspace; the client uses the
				// server's address (podman's CNI networks have no name resolution here).
				// busybox wget's own -T crashes in Debian's static build: timeout(1) bounds it.
				net, srv := "kwcnet-"+tool, "kwc-srv-"+tool
				script := fmt.Sprintf(`set -e
%[1]s rm -f %[3]s >/dev/null 2>&1 || true
%[1]s network rm %[2]s >/dev/null 2>&1 || true
%[1]s network create %[2]s >/dev/null
%[1]s run -d --name %[3]s --network %[2]s %[4]s sh -c 'mkdir -p /www && echo net-%[5]s > /www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
ip=$(%[1]s inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' %[3]s)
echo "server at $ip" >&2
i=0; until out=$(%[1]s run --rm --network %[2]s %[4]s timeout 5 wget -q -O - http://$ip:8080/index.html 2>/dev/null); do i=$((i+1)); [ $i -lt 5 ] || exit 1; sleep 1; done
echo "$out"
%[1]s rm -f %[3]s >/dev/null; %[1]s network rm %[2]s >/dev/null`, tool, net, srv, tb.BaseRef(), token)
				r, err := tb.Shell().Sudo(ctx, tmo, script)
				if err != nil || (r.OK() && strings.TrimSpace(r.Stdout) == "net-"+token) {
					return []target.ExecResult{r}, "", err
				}
				_, _ = tb.Shell().Sudo(ctx, tmo, tool+" rm -f "+srv+"; "+tool+" network rm "+net)
				return []target.ExecResult{r}, "a container could not reach another over a network made in the workspace", nil
			}},
			{"privileged", func(ctx context.Context, tb *Toolbox, tool, token string, tmo time.Duration) ([]target.ExecResult, string, error) {
				// A tmpfs mount needs CAP_SYS_ADMIN: it proves the nested container is
				// privileged, and lives only in that container's mount namespace.
				script := fmt.Sprintf("%s run --rm --privileged --network none %s sh -c 'mkdir -p /mnt/kwc && mount -t tmpfs kwc /mnt/kwc && umount /mnt/kwc && echo privileged-%s'", tool, tb.BaseRef(), token)
				r, err := tb.Shell().Sudo(ctx, tmo, script)
				if err != nil || (r.OK() && strings.TrimSpace(r.Stdout) == "privileged-"+token) {
					return []target.ExecResult{r}, "", err
				}
				return []target.ExecResult{r}, "a nested --privileged container did not run: " + lastLine(r.Stdout+r.Stderr), nil
			}},
		}
		var names []string
		for _, rc := range cases {
			names = append(names, rc.name)
		}
		checks := toolChecks(ctx, in.Suite, in.Tools, in.Lane, "run", in.Suite.Config.Criteria.Run.Tools, names, func(tool string, i int) (verdict.Check, error) {
			results, problem, err := cases[i].run(ctx, in.Tools, tool, in.Suite.RunID, tmo)
			c := verdict.Check{Evidence: framework.Evidence(results...)}
			if problem != "" && len(results) == 0 {
				c.Evidence = problem
			}
			c.Verdict, c.Reason = judge(problem == "", problem)
			return c, err
		})
		crit := verdict.ByTool(checks, in.Suite.Config.Criteria.Run)
		in.Suite.Record(in.Lane, "run", crit)
		framework.ExpectCriterion(in.Lane, "run", crit)
	})
}
