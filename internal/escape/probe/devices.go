package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// maxScan bounds how much of one block device a probe reads: the canary filesystem is
// a few MiB; a node's real disks are never read past their first sectors.
const maxScan = 64 << 20

// scanForMarker reads a device read-only and returns the lines around the marker.
func scanForMarker(path string, limit int64, marker string) ([]string, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r := io.LimitReader(f, limit)
	buf := make([]byte, 1<<20)
	var found []string
	var total int64
	m := []byte(marker + ":")
	var carry []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := append(carry, buf[:n]...)
			for off := 0; ; {
				i := bytes.Index(chunk[off:], m)
				if i < 0 {
					break
				}
				start := off + i
				end := min(start+len(m)+96, len(chunk))
				line := chunk[start:end]
				if j := bytes.IndexAny(line, "\n\x00"); j >= 0 {
					line = line[:j]
				}
				found = append(found, string(line))
				off = start + len(m)
			}
			total += int64(n)
			keep := min(len(chunk), len(m)+96)
			carry = append([]byte(nil), chunk[len(chunk)-keep:]...)
		}
		if err == io.EOF {
			return found, total, nil
		}
		if err != nil {
			return found, total, err
		}
	}
}

type blockDev struct {
	name, dev string
	size      int64
}

func blockDevices() ([]blockDev, error) {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return nil, err
	}
	var out []blockDev
	for _, e := range entries {
		base := filepath.Join("/sys/class/block", e.Name())
		dev, _ := os.ReadFile(filepath.Join(base, "dev"))
		sz, _ := os.ReadFile(filepath.Join(base, "size"))
		sectors, _ := strconv.ParseInt(strings.TrimSpace(string(sz)), 10, 64)
		out = append(out, blockDev{name: e.Name(), dev: strings.TrimSpace(string(dev)), size: sectors * 512})
	}
	return out, nil
}

// blockDeviceCanary reads every small block device node in every device root for the
// canary's marker: the node's canary loop device, passed in under any name, holds it.
// Devices larger than maxScan are a node's real disks; P21 recognises those by their
// first bytes instead.
func blockDeviceCanary(_ context.Context, s probespec.Spec, o *obs) {
	if devs, err := blockDevices(); err == nil {
		var names []string
		for _, d := range devs {
			if d.size > 0 {
				names = append(names, fmt.Sprintf("%s(%s,%dMiB)", d.name, d.dev, d.size>>20))
			}
		}
		o.fact("blockDevices", strings.Join(names, " "))
	}
	nodes := discoverDevNodes(s, o)
	read := 0
	for _, n := range nodes {
		if !n.block {
			continue
		}
		size, err := deviceSize(n.path)
		if err != nil {
			o.logf("open %s (%s): %v", n.path, n.rdev, err)
			continue
		}
		if size == 0 || size > maxScan {
			continue
		}
		found, k, err := scanForMarker(n.path, maxScan, s.Marker)
		if err != nil {
			o.logf("read %s (%s): %v", n.path, n.rdev, err)
			continue
		}
		read++
		o.logf("read %s (%s, %d bytes): %d marker hits", n.path, n.rdev, k, len(found))
		for _, f := range found {
			o.candidate(f)
		}
	}
	o.logf("%d device nodes found, %d small block devices read", len(nodes), read)
}

// deviceSize opens a block device read-only and returns its size.
func deviceSize(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}

func mknodLoopCanary(_ context.Context, s probespec.Spec, o *obs) {
	maj, mnr, ok := strings.Cut(s.LoopDevice, ":")
	if !ok {
		o.notApplicable("no canary loop device was planted (the node could not attach one)")
		return
	}
	ma, _ := strconv.Atoi(maj)
	mi, _ := strconv.Atoi(mnr)
	p := filepath.Join(s.TempDir, "loop-canary")
	_ = os.Remove(p)
	if err := unix.Mknod(p, unix.S_IFBLK|0o400, int(unix.Mkdev(uint32(ma), uint32(mi)))); err != nil {
		o.logf("mknod %s b %s: %v", p, s.LoopDevice, err)
		return
	}
	defer os.Remove(p)
	found, n, err := scanForMarker(p, maxScan, s.Marker)
	if err != nil {
		o.logf("read the node %s (%s): %v", p, s.LoopDevice, err)
		return
	}
	o.logf("read %d bytes through a node for %s: %d marker hits", n, s.LoopDevice, len(found))
	for _, f := range found {
		o.candidate(f)
	}
}
