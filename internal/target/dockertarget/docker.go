// Package dockertarget runs workspaces as containers of the local engine (DOCKER_HOST
// honoured), through the engine's Go API. Lanes map to engine runtimes; the host is the
// node.
package dockertarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/capability"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/target"
)

// DefaultRuntime is the lane runtime that means "whatever the engine runs by default"
// (runc on a normal host).
const DefaultRuntime = "default"

// Target is the docker target for one run.
type Target struct {
	cli   *client.Client
	runID string
	image string
	host  string
}

// New connects to the engine named by DOCKER_HOST (or the default socket).
func New(runID, workspaceImage string) (*Target, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker target: creating engine client (DOCKER_HOST=%q): %w", os.Getenv("DOCKER_HOST"), err)
	}
	return &Target{cli: cli, runID: runID, image: workspaceImage, host: cli.DaemonHost()}, nil
}

// Client exposes the engine client to the image builder, which shares the connection.
func (t *Target) Client() *client.Client { return t.cli }

func (t *Target) Name() string { return string(config.TargetDocker) }

// Preflight checks that the engine answers.
func (t *Target) Preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := t.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("no container engine answers at %s: %w\n%s", t.host, err, NoEngineFix)
	}
	return nil
}

// NoEngineFix says exactly what to run when no engine answers: the private engine
// make test uses, or the host's own dockerd.
const NoEngineFix = `  fix: eval "$(hack/engine.sh start)" && make e2e TARGET=docker   (a private engine; root, Debian's docker.io)
       or start the host's dockerd (systemctl start docker), or point DOCKER_HOST at a running engine`

// RuntimeDaemonJSON is the daemon.json entry that registers gVisor's runsc as name,
// with the flags kwc's gVisor lanes need (see hack/runsc.sh).
func RuntimeDaemonJSON(name string) string {
	return `  {"runtimes": {"` + name + `": {"path": "/usr/local/bin/runsc",
    "runtimeArgs": ["--platform=systrap", "--allow-suid", "--net-raw", "--allow-packet-socket-write"]}}}`
}

// Runtimes lists the engine's registered runtimes, plus DefaultRuntime.
func (t *Target) Runtimes(ctx context.Context) ([]string, error) {
	info, err := t.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading engine info from %s: %w", t.host, err)
	}
	out := []string{DefaultRuntime}
	for name := range info.Info.Runtimes {
		out = append(out, name)
	}
	sort.Strings(out[1:])
	return out, nil
}

// Describe records the engine's version, default runtime and kernel.
func (t *Target) Describe(ctx context.Context) map[string]string {
	facts := map[string]string{"engine.host": t.host}
	info, err := t.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		facts["engine.error"] = err.Error()
		return facts
	}
	i := info.Info
	facts["engine.version"] = i.ServerVersion
	facts["engine.defaultRuntime"] = i.DefaultRuntime
	facts["engine.cgroupVersion"] = i.CgroupVersion
	facts["engine.storageDriver"] = i.Driver
	facts["host.kernel"] = i.KernelVersion
	facts["host.os"] = i.OperatingSystem
	// The engine runs on this host, so the harness's own bounding set is the ceiling of
	// every privileged container here: runc refuses --privileged when it lacks a cap.
	if missing := capability.MissingFromBounding(); len(missing) > 0 {
		facts["host.capBoundingMissing"] = strings.Join(missing, ",")
	}
	return facts
}

func (t *Target) containerName(lane string) string { return "kwc-" + t.runID + "-" + lane }

// StartWorkspace creates and starts the lane's container and waits until it can exec.
func (t *Target) StartWorkspace(ctx context.Context, lane config.Lane) (target.Workspace, error) {
	hc, err := t.hostConfig(lane)
	if err != nil {
		return nil, err
	}
	if len(lane.Annotations) > 0 {
		// Engines before API 1.43 drop annotations without a word: the lane would run
		// as another lane than the one it names.
		if v := t.cli.ClientVersion(); versionLess(v, "1.43") {
			return nil, fmt.Errorf("lane %s: annotations need engine API 1.43 or later, this engine speaks %s and would drop them; run the lane on a newer engine or on target kind or cluster", lane.Name, v)
		}
	}
	labels := map[string]string{}
	for k, v := range lane.Labels {
		labels[k] = v
	}
	labels[target.LabelRun], labels[target.LabelLane] = t.runID, lane.Name
	image := t.image
	if lane.Image != "" {
		image = lane.Image
	}
	name := t.containerName(lane.Name)
	created, err := t.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:    image,
			Hostname: "workspace",
			Labels:   labels,
			User:     userSpec(lane),
		},
		HostConfig: hc,
	})
	if err != nil {
		if strings.Contains(err.Error(), "No such image") {
			return nil, fmt.Errorf("lane %s: workspace image %s is not in the engine: %w\n  fix: let the suite build it (it does unless told otherwise) or build dockerfiles/workspace yourself; a lane's own image must be in the engine already", lane.Name, image, err)
		}
		return nil, fmt.Errorf("lane %s: creating workspace container: %w", lane.Name, err)
	}
	ws := &workspace{t: t, id: created.ID, name: name, lane: lane}
	if _, err := t.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		logs, _ := ws.Logs(context.WithoutCancel(ctx))
		_ = ws.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lane %s: starting workspace with runtime %q: %w%s", lane.Name, lane.Runtime, err, tailNote(logs))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := ws.Exec(ctx, target.ExecRequest{Cmd: []string{"true"}, Timeout: 10 * time.Second})
		if err == nil && r.OK() {
			return ws, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logs, _ := ws.Logs(context.WithoutCancel(ctx))
			_ = ws.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("lane %s: workspace never accepted exec (last: %v, exit %d %s)%s", lane.Name, err, r.ExitCode, r.Stderr, tailNote(logs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (t *Target) hostConfig(lane config.Lane) (*container.HostConfig, error) {
	hc := &container.HostConfig{
		Privileged:  lane.Privileged,
		NetworkMode: container.NetworkMode(lane.Network),
		CapAdd:      lane.Capabilities.Add,
		CapDrop:     lane.Capabilities.Drop,
	}
	opts, err := securityOpts(lane)
	if err != nil {
		return nil, fmt.Errorf("lane %s: %w", lane.Name, err)
	}
	hc.SecurityOpt = opts
	if len(lane.Sysctls) > 0 {
		hc.Sysctls = lane.Sysctls
	}
	if len(lane.Annotations) > 0 {
		hc.Annotations = lane.Annotations
	}
	if lane.ReadOnlyRootFilesystem {
		// Scratch where a read-only workspace still needs to write (sudo's timestamps,
		// the nested daemon's sockets, the probe's copy of itself), exec for the probe.
		hc.ReadonlyRootfs = true
		hc.Tmpfs = map[string]string{"/tmp": "rw,exec,mode=1777", "/run": "rw,exec,mode=0755", "/var/tmp": "rw,exec,mode=1777"}
	}
	// Image stores never live on the container's own rootfs: on engine volumes, or on
	// tmpfs mounted exec for a sandboxed runtime (Docker's --tmpfs default is noexec,
	// which breaks nested containers).
	// (HostConfig.Tmpfs, not a tmpfs mount: engines before API 1.46 ignore a mount's
	// tmpfs options, and exec with them.)
	for _, dir := range []string{"/var/lib/docker", "/var/lib/containers"} {
		if lane.Storage == config.StorageTmpfs {
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[dir] = "rw,exec,mode=0711"
			continue
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Target: dir, VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{target.LabelRun: t.runID}}})
	}
	if lane.Runtime != DefaultRuntime && lane.Runtime != "" {
		hc.Runtime = lane.Runtime
	}
	if lane.Network != config.NetworkHost {
		// sudo resolves the host name; with no network nothing else would name it.
		hc.ExtraHosts = []string{"workspace:127.0.1.1"}
	}
	if lane.HostPID {
		hc.PidMode = "host"
	}
	if lane.HostIPC {
		hc.IpcMode = "host"
	}
	for _, m := range lane.Mounts {
		src := m.Source
		if m.Type == config.MountEngineSocket || m.Type == config.MountEngineSocketDir {
			p, err := t.socketPath()
			if err != nil {
				return nil, fmt.Errorf("lane %s: %w", lane.Name, err)
			}
			src = p
			if m.Type == config.MountEngineSocketDir {
				src = filepath.Dir(p)
			}
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, d := range lane.Devices {
		dev, perms, _ := strings.Cut(d, ":")
		if perms == "" {
			perms = "rwm"
		}
		if dev == config.DeviceRootDisk {
			p, err := rootDisk()
			if err != nil {
				return nil, fmt.Errorf("lane %s: devices: %w", lane.Name, err)
			}
			dev = p
		}
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: dev, PathInContainer: dev, CgroupPermissions: perms})
	}
	return hc, nil
}

// securityOpts are the lane's seccomp, AppArmor and no-new-privileges settings as the
// engine takes them; RuntimeDefault and empty leave the engine's own default.
func securityOpts(lane config.Lane) ([]string, error) {
	var out []string
	switch lane.Seccomp {
	case config.SeccompUnconfined:
		out = append(out, "seccomp=unconfined")
	case config.SeccompLocalhost:
		// The engine takes the profile's content, not a path (the CLI reads the file).
		b, err := os.ReadFile(lane.SeccompProfile)
		if err != nil {
			return nil, fmt.Errorf("reading seccompProfile: %w", err)
		}
		out = append(out, "seccomp="+string(b))
	}
	switch {
	case lane.AppArmor == "Unconfined":
		out = append(out, "apparmor=unconfined")
	case strings.HasPrefix(lane.AppArmor, "Localhost/"):
		out = append(out, "apparmor="+strings.TrimPrefix(lane.AppArmor, "Localhost/"))
	}
	if lane.AllowPrivilegeEscalation != nil && !*lane.AllowPrivilegeEscalation {
		out = append(out, "no-new-privileges:true")
	}
	return out, nil
}

// userSpec is the lane's uid[:gid], or "" for the image's own user.
func userSpec(lane config.Lane) string {
	switch {
	case lane.RunAsUser != nil && lane.RunAsGroup != nil:
		return fmt.Sprintf("%d:%d", *lane.RunAsUser, *lane.RunAsGroup)
	case lane.RunAsUser != nil:
		return strconv.FormatInt(*lane.RunAsUser, 10)
	case lane.RunAsGroup != nil:
		return fmt.Sprintf("5001:%d", *lane.RunAsGroup)
	}
	return ""
}

// rootDisk is the block device the host's root filesystem is on, by its number.
func rootDisk() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return "", err
	}
	num := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	uevent, err := os.ReadFile("/sys/dev/block/" + num + "/uevent")
	if err != nil {
		return "", fmt.Errorf("the root filesystem (%s) is not on a block device this host lists: %w", num, err)
	}
	for _, l := range strings.Split(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			return "/dev/" + v, nil
		}
	}
	return "", fmt.Errorf("block device %s has no name in sysfs", num)
}

// versionLess compares dotted API versions ("1.41" < "1.43").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// EngineIdentity is the engine's ID and, for a local unix socket, its path: what the
// runtime-socket probe compares with.
func (t *Target) EngineIdentity(ctx context.Context) (id string, sockets []string, err error) {
	info, err := t.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("reading engine info: %w", err)
	}
	if p, err := t.socketPath(); err == nil {
		sockets = []string{p}
	}
	return info.Info.ID, sockets, nil
}

// socketPath is the engine's unix socket on the host, for engine-socket mounts.
func (t *Target) socketPath() (string, error) {
	u, err := url.Parse(t.host)
	if err != nil || u.Scheme != "unix" {
		return "", fmt.Errorf("engine-socket mount needs a unix:// DOCKER_HOST, have %q", t.host)
	}
	return u.Path, nil
}

// Cleanup removes every container and volume labelled with this run.
func (t *Target) Cleanup(ctx context.Context) error {
	_, err := RemoveRun(ctx, t.cli, t.runID)
	return err
}

// RemoveRun removes every container (and its volumes) labelled with runID, then any
// labelled volume left over (a run killed between creating a volume and its
// container); an empty runID removes every kwc container and volume (`kwc cleanup
// --all`). It returns what it removed.
func RemoveRun(ctx context.Context, cli *client.Client, runID string) ([]string, error) {
	f := client.Filters{}
	if runID == "" {
		f = f.Add("label", target.LabelRun)
	} else {
		f = f.Add("label", target.LabelRun+"="+runID)
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing kwc containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			// A run killed while it removed the container leaves the engine finishing
			// that removal: wait for it rather than call it a failure (the volumes
			// below are in use until it is done).
			if !strings.Contains(err.Error(), "already in progress") || waitGone(ctx, cli, c.ID, removalWait) != nil {
				errs = append(errs, fmt.Errorf("removing container %s: %w", strings.Join(c.Names, ","), err))
				continue
			}
		}
		removed = append(removed, "container "+strings.TrimPrefix(strings.Join(c.Names, ","), "/"))
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("listing kwc volumes: %w", err))...)
	}
	for _, v := range vols.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
			continue
		}
		removed = append(removed, "volume "+v.Name)
	}
	return removed, errors.Join(errs...)
}

// removalWait bounds the wait for a removal the engine already has under way.
const removalWait = time.Minute

// waitGone waits until the engine no longer knows the container.
func waitGone(ctx context.Context, cli *client.Client, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s still there after %s", id, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type workspace struct {
	t    *Target
	id   string
	name string
	lane config.Lane
}

func (w *workspace) Lane() config.Lane { return w.lane }
func (w *workspace) Name() string      { return w.name }

func (w *workspace) EnterHint() string {
	return fmt.Sprintf("DOCKER_HOST=%s docker exec -it %s bash", w.t.host, w.name)
}

// Exec runs req.Cmd. The command is wrapped in timeout(1) so it dies inside the
// workspace at its deadline; the harness also stops waiting shortly after.
func (w *workspace) Exec(ctx context.Context, req target.ExecRequest) (res target.ExecResult, err error) {
	cmd := req.Cmd
	if req.Timeout > 0 {
		secs := strconv.FormatFloat(req.Timeout.Seconds(), 'f', 1, 64)
		cmd = append([]string{"timeout", "--kill-after=5", secs}, cmd...)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout+15*time.Second)
		defer cancel()
	}
	res = target.ExecResult{Cmd: req.Cmd, User: req.User}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	created, err := w.t.cli.ExecCreate(ctx, w.id, client.ExecCreateOptions{
		Cmd: cmd, User: req.User, Env: req.Env,
		AttachStdout: true, AttachStderr: true, AttachStdin: req.Stdin != nil,
	})
	if err != nil {
		if aerr := w.Alive(context.WithoutCancel(ctx)); aerr != nil {
			return res, fmt.Errorf("exec %q in %s: %w", strings.Join(req.Cmd, " "), w.name, aerr)
		}
		return res, fmt.Errorf("exec %q in %s: %w", strings.Join(req.Cmd, " "), w.name, err)
	}
	att, err := w.t.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return res, fmt.Errorf("attaching to exec in %s: %w", w.name, err)
	}
	defer att.Close()
	if req.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, req.Stdin)
			if cw, ok := att.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		att.Close()
		<-done
		res.Stdout, res.Stderr, res.TimedOut, res.ExitCode = stdout.String(), stderr.String(), true, -1
		return res, nil
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	if err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("reading exec output in %s: %w", w.name, err)
	}
	insp, err := w.t.cli.ExecInspect(context.WithoutCancel(ctx), created.ID, client.ExecInspectOptions{})
	if err != nil {
		return res, fmt.Errorf("reading exit code in %s: %w", w.name, err)
	}
	res.ExitCode = insp.ExitCode
	if req.Timeout > 0 && (res.ExitCode == 124 || res.ExitCode == 137) {
		res.TimedOut = true
	}
	return res, nil
}

// CopyIn unpacks a tar stream in dir with tar inside the workspace, as kubectl cp
// does. The engine's archive API is not used: it reads the container's root from the
// host's side, which a sandboxed runtime (gVisor) does not expose.
func (w *workspace) CopyIn(ctx context.Context, dir string, tarStream io.Reader) error {
	r, err := w.Exec(ctx, target.ExecRequest{Cmd: []string{"tar", "-x", "-m", "-C", dir}, Stdin: tarStream, Timeout: 5 * time.Minute})
	if err != nil {
		return fmt.Errorf("copying into %s:%s: %w", w.name, dir, err)
	}
	if !r.OK() {
		return fmt.Errorf("copying into %s:%s: tar exit %d: %s", w.name, dir, r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	return nil
}

// CopyOut streams a tar of path made by tar inside the workspace; a tar that fails
// ends the stream with its error.
func (w *workspace) CopyOut(ctx context.Context, path string) (io.ReadCloser, error) {
	i := strings.LastIndex(path, "/")
	dir, base := path[:i+1], path[i+1:]
	if dir == "" {
		dir = "."
	}
	created, err := w.t.cli.ExecCreate(ctx, w.id, client.ExecCreateOptions{Cmd: []string{"tar", "-c", "-C", dir, base}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, fmt.Errorf("copying %s:%s out: %w", w.name, path, err)
	}
	att, err := w.t.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("copying %s:%s out: %w", w.name, path, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer att.Close()
		var stderr bytes.Buffer
		_, err := stdcopy.StdCopy(pw, &stderr, att.Reader)
		if err == nil {
			insp, ierr := w.t.cli.ExecInspect(context.WithoutCancel(ctx), created.ID, client.ExecInspectOptions{})
			switch {
			case ierr != nil:
				err = ierr
			case insp.ExitCode != 0:
				err = fmt.Errorf("tar exit %d: %s", insp.ExitCode, strings.TrimSpace(stderr.String()))
			}
		}
		if err != nil {
			err = fmt.Errorf("copying %s:%s out: %w", w.name, path, err)
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (w *workspace) Logs(ctx context.Context) (string, error) {
	rc, err := w.t.cli.ContainerLogs(ctx, w.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "200"})
	if err != nil {
		return "", fmt.Errorf("reading logs of %s: %w", w.name, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = stdcopy.StdCopy(&b, &b, rc)
	return b.String(), err
}

func (w *workspace) Alive(ctx context.Context) error {
	insp, err := w.t.cli.ContainerInspect(ctx, w.id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("workspace %s is gone: %w", w.name, err)
	}
	st := insp.Container.State
	if st == nil || !st.Running {
		code, oom := -1, false
		if st != nil {
			code, oom = st.ExitCode, st.OOMKilled
		}
		return fmt.Errorf("workspace %s stopped (exit code %d, OOM-killed %v); its logs are in the report's artifacts", w.name, code, oom)
	}
	return nil
}

func (w *workspace) Stop(ctx context.Context) error {
	_, err := w.t.cli.ContainerRemove(ctx, w.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !strings.Contains(err.Error(), "No such container") {
		return fmt.Errorf("removing workspace %s: %w", w.name, err)
	}
	return nil
}

func tailNote(logs string) string {
	if last := logtail.Last(logs, 10); last != "" {
		return "\n  workspace log tail:\n" + logtail.Indent(last, "    ")
	}
	return ""
}
