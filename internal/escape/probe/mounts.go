package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

type mountInfo struct {
	root, point, fstype string
}

func mounts() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountInfo
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		sep := 6
		for sep < len(f) && f[sep] != "-" {
			sep++
		}
		if sep+1 >= len(f) {
			continue
		}
		out = append(out, mountInfo{root: unescape(f[3]), point: unescape(f[4]), fstype: f[sep+1]})
	}
	return out, nil
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// mountedHostFile looks for the node's canary files through every mount. Two ways,
// since a mountinfo root names a folder of the filesystem the mount comes from, not
// of the node's tree (a separate /var partition, a virtio-fs share, a volume):
//   - where a mount's root is a folder above a canary, the canary's path under it;
//   - every walkable mount, walked within the discovery bounds, for any entry whose
//     name carries the run's marker: the node agent names its folder canaries so.
func mountedHostFile(_ context.Context, s probespec.Spec, o *obs) {
	ms, err := mounts()
	if err != nil {
		o.fail("reading mountinfo: %v", err)
		return
	}
	tried := 0
	read := map[string]bool{}
	for _, canary := range append([]string{s.CanaryPath}, s.FolderCanaries...) {
		for _, m := range ms {
			rest, ok := strings.CutPrefix(canary, strings.TrimSuffix(m.root, "/")+"/")
			if !ok {
				continue
			}
			p := filepath.Join(m.point, rest)
			tried++
			if !readMountedCandidate(o, p, m) {
				return
			}
			read[p] = true
		}
	}
	w := newWalker(s)
	dirs, _ := walkableMounts(ms, s)
	var named []string
	for _, m := range dirs {
		w.walk(m.point, func(p string, d fs.DirEntry) {
			if s.Marker != "" && d.Type().IsRegular() && strings.Contains(d.Name(), s.Marker) && !read[p] {
				named = append(named, p)
				read[p] = true
			}
		})
	}
	w.report(o, "mount")
	for _, p := range named {
		if !readMountedCandidate(o, p, mountOf(ms, p)) {
			return
		}
	}
	o.logf("%d mounts checked, %d places could hold one of %d canaries by path, %d mounts walked, %d entries carry the marker",
		len(ms), tried, 1+len(s.FolderCanaries), len(dirs), len(named))
}

// readMountedCandidate reads a file a mount may expose. It is false when something is
// at the path and cannot be read: the probe then cannot say the canary is out of
// reach, and the observation is an error.
func readMountedCandidate(o *obs, p string, m mountInfo) bool {
	c, err := readSmall(p, 512)
	switch {
	case err == nil:
		o.logf("read %s through the mount at %s (source dir %s, %s)", p, m.point, m.root, m.fstype)
		o.candidate(c)
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR):
	default:
		o.fail("%s exists through the mount at %s but cannot be read: %v", p, m.point, err)
		return false
	}
	return true
}

// mountOf is the mount a path lies in: the one with the longest mount point above it.
func mountOf(ms []mountInfo, p string) mountInfo {
	best := mountInfo{point: "/"}
	for _, m := range ms {
		if (p == m.point || strings.HasPrefix(p, strings.TrimSuffix(m.point, "/")+"/")) && len(m.point) >= len(best.point) {
			best = m
		}
	}
	return best
}

// openByHandle is the "shocker" technique read-only: from any mount of a disk
// filesystem, open the canary by its own handle (wherever the node mounts that
// filesystem), and open the filesystem's root inode by handle, then the canary path.
func openByHandle(_ context.Context, s probespec.Spec, o *obs) {
	ms, err := mounts()
	if err != nil {
		o.logf("reading mountinfo: %v", err)
		return
	}
	tried := map[string]bool{}
	for _, m := range ms {
		switch m.fstype {
		case "ext4", "ext3", "ext2", "xfs", "btrfs":
		default:
			continue
		}
		if tried[m.point] {
			continue
		}
		tried[m.point] = true
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, m.point, 0)
		if err != nil {
			o.logf("name_to_handle_at %s: %v", m.point, err)
			continue
		}
		mfd, err := unix.Open(m.point, unix.O_RDONLY, 0)
		if err != nil {
			continue
		}
		if c := s.CanaryHandle; c != nil {
			readByHandle(o, mfd, unix.NewFileHandle(c.Type, c.Bytes), "the canary's own handle", m.point)
		}
		// FILEID_INO32_GEN: inode 2 is the root of ext* filesystems.
		raw := make([]byte, 8)
		binary.LittleEndian.PutUint32(raw, 2)
		rootFD, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(1, raw), unix.O_RDONLY|unix.O_DIRECTORY)
		unix.Close(mfd)
		if err != nil {
			o.logf("open_by_handle_at(root inode) via %s (handle type %d): %v", m.point, h.Type(), err)
			continue
		}
		fd, err := unix.Openat(rootFD, strings.TrimPrefix(s.CanaryPath, "/"), unix.O_RDONLY, 0)
		unix.Close(rootFD)
		if err != nil {
			o.logf("opened the root of the filesystem behind %s; canary path: %v", m.point, err)
			continue
		}
		readFD(o, fd, "the canary path through the root's handle", m.point)
	}
	if len(tried) == 0 {
		o.logf("no ext/xfs/btrfs mount to take a handle from")
	}
}

// readByHandle opens a file by handle through a mount of its filesystem and reads it.
func readByHandle(o *obs, mountFD int, h unix.FileHandle, what, point string) {
	fd, err := unix.OpenByHandleAt(mountFD, h, unix.O_RDONLY)
	if err != nil {
		o.logf("open_by_handle_at(%s) via %s: %v", what, point, err)
		return
	}
	readFD(o, fd, what, point)
}

// readFD reads the start of an open file as a candidate and closes it.
func readFD(o *obs, fd int, what, point string) {
	buf := make([]byte, 512)
	n, _ := unix.Read(fd, buf)
	unix.Close(fd)
	o.logf("read %s through the mount at %s", what, point)
	if n > 0 {
		o.candidate(string(buf[:n]))
	}
}
