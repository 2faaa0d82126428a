package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"kwc.dev/kwc/internal/nodeagent"
	"kwc.dev/kwc/internal/target/dockertarget"
)

// cleanupCmd removes what a killed run can leave: labelled containers and their
// volumes, and canaries (files, /dev/shm entries, keys, loop devices). Canary processes die
// with the harness; listeners die with its process.
func cleanupCmd(ctx context.Context, args []string) error {
	fs := newFlags("cleanup")
	run := fs.String("run", "", "the run id to clean up")
	all := fs.Bool("all", false, "clean up every kwc run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *run == "" && !*all {
		return errors.New("say which run: --run <id> (from the report folder's name) or --all")
	}
	var errs []error
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		if err := dockertarget.RemoveRun(ctx, cli, *run); err != nil {
			errs = append(errs, err)
		}
	}
	pattern := "*"
	if *run != "" {
		pattern = *run
	}
	dirs, _ := filepath.Glob(filepath.Join(nodeagent.CanaryRoot, pattern))
	shm, _ := filepath.Glob("/dev/shm/" + nodeagent.Marker(pattern))
	for _, p := range append(dirs, shm...) {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("removed", p)
		}
	}
	keys, err := nodeagent.RemoveKeys(pattern)
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range keys {
		fmt.Println("removed key", k)
	}
	loops, _ := filepath.Glob(filepath.Join(os.TempDir(), "kwc-loop-"+pattern))
	for _, d := range loops {
		img := filepath.Join(d, "canary.img")
		out, _ := exec.CommandContext(ctx, "losetup", "-j", img).Output()
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if dev, _, ok := strings.Cut(l, ":"); ok {
				if b, err := exec.CommandContext(ctx, "losetup", "-d", dev).CombinedOutput(); err != nil {
					errs = append(errs, fmt.Errorf("losetup -d %s: %v %s", dev, err, b))
				}
			}
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("removed", d)
		}
	}
	return errors.Join(errs...)
}
