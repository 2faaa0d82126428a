package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/cachedir"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/escape/calibrate"
	"kwc.dev/kwc/internal/images/engineimage"
	"kwc.dev/kwc/internal/reporting/report"
	"kwc.dev/kwc/internal/runid"
	"kwc.dev/kwc/internal/target/dockertarget"
)

func calibrateCmd(ctx context.Context, args []string) error {
	fs := newFlags("calibrate", "[flags]")
	cfgPath := fs.String("kwc.config", "", "kwc.yaml on top of the embedded defaults")
	reportsDir := fs.String("kwc.reports-dir", "reports", "where the calibration's folder goes")
	intoLatest := fs.Bool("into-latest", false, "write into the folder reports/latest points at (after make e2e) instead of a new one")
	vm := fs.Bool("vm", true, "boot the calibration VM (QEMU)")
	containers := fs.Bool("containers", true, "run the container contexts on the local engine")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath, config.Overrides{Target: string(config.TargetDocker)})
	if err != nil {
		return err
	}
	runID := runid.New()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s kwc: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	o := calibrate.Options{Config: cfg, RunID: runID, CacheDir: cachedir.Path(), VM: *vm, Logf: logf}
	if *containers {
		dt, err := dockertarget.New(runID, cfg.Images.Workspace)
		if err != nil {
			return err
		}
		defer func() { _ = dt.Cleanup(context.WithoutCancel(ctx)) }()
		if err := dt.Preflight(ctx); err != nil {
			return err
		}
		if ok, _, err := engineimage.Exists(ctx, dt.Client(), cfg.Images.Workspace); err != nil || !ok {
			return fmt.Errorf("the workspace image %s is not in the engine: run `make e2e TARGET=docker` first (it builds it), or pass --containers=false", cfg.Images.Workspace)
		}
		info, err := dt.Client().Info(ctx, client.InfoOptions{})
		if err != nil {
			return fmt.Errorf("reading engine info: %w", err)
		}
		o.Target, o.EngineID = dt, info.Info.ID
		if _, ok := info.Info.Runtimes[cfg.Docker.SandboxRuntime]; ok && cfg.Docker.SandboxRuntime != "" {
			o.Sandboxes = cfg.Docker.SandboxLanes
		} else if cfg.Docker.SandboxRuntime != "" {
			fmt.Fprintf(os.Stderr, "kwc: no sandbox context: the engine has no %q runtime (make runsc, then register it)\n", cfg.Docker.SandboxRuntime)
		}
		if u, err := url.Parse(dt.Client().DaemonHost()); err == nil && u.Scheme == "unix" {
			o.Sockets = []string{u.Path}
		}
	}
	cal, err := calibrate.Run(ctx, o)
	if err != nil {
		return err
	}
	dir := filepath.Join(*reportsDir, time.Now().UTC().Format("20060102-150405")+"-"+runID)
	if *intoLatest {
		if d, err := filepath.EvalSymlinks(filepath.Join(*reportsDir, "latest")); err == nil {
			dir = d
		}
	}
	p, err := calibrate.Write(dir, cal)
	if err != nil {
		return err
	}
	if !*intoLatest {
		if err := report.PointLatest(dir); err != nil {
			return err
		}
	}
	calibrate.Table(os.Stdout, cal)
	fmt.Printf("calibration: %s\n", p)
	if len(cal.Problems) > 0 {
		return exitError(1)
	}
	return nil
}
