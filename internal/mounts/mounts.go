// Package mounts finds and detaches the mounts under a folder kwc owns, so that no
// removal of such a folder ever walks into a mounted filesystem (a host cgroup
// hierarchy, a bind mount of the node's root) and deletes what is there.
package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Under lists this mount namespace's mount points at or below dir.
func Under(dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(abs))
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out, nil
}

// DetachUnder lazily unmounts every mount at or below dir, deepest first, and
// returns the ones it detached.
func DetachUnder(dir string) ([]string, error) {
	ms, err := Under(dir)
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ms)))
	var done []string
	var errs []error
	for _, m := range ms {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			continue
		}
		done = append(done, m)
	}
	return done, errors.Join(errs...)
}

// RemoveTree removes dir, but never while anything is mounted at or below it.
func RemoveTree(dir string) error {
	ms, err := Under(dir)
	if err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	if len(ms) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted under it (unmount it first)", dir, ms[0])
	}
	return os.RemoveAll(dir)
}

// DetachAndRemove detaches what is mounted under dir (a folder whose mounts are all
// kwc's own), then removes it.
func DetachAndRemove(dir string) error {
	if _, err := DetachUnder(dir); err != nil {
		return err
	}
	return RemoveTree(dir)
}
