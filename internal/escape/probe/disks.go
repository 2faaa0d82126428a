package probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"kwc.dev/kwc/internal/probespec"
)

// diskIDBytes is how much of a disk identifies it: the partition table and the first
// filesystem's superblock. Nothing past it is ever read.
const diskIDBytes = 64 << 10

// DiskIDPrefix marks a candidate that is the hash of a block device's first bytes.
const DiskIDPrefix = probespec.DiskIDCandidatePrefix

// diskID hashes a block device's first diskIDBytes, read-only. An all-zero start
// identifies nothing (every blank disk has it) and yields "".
func diskID(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, diskIDBytes)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	buf = buf[:n]
	if n == 0 || bytes.Count(buf, []byte{0}) == n {
		return "", nil
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), nil
}

// NodeDiskIDs is what the node agent records of the node's own disks: for each block
// device with a size, the hash of its first bytes ("hash=name", sorted). Devices
// whose start is blank are listed apart: they cannot be recognised.
func NodeDiskIDs() (ids []string, blank []string, err error) {
	devs, err := blockDevices()
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, d := range devs {
		if d.size == 0 {
			continue
		}
		id, err := diskID("/dev/" + d.name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
		case id == "":
			blank = append(blank, d.name)
		default:
			ids = append(ids, id+"="+d.name)
		}
	}
	sort.Strings(ids)
	return ids, blank, errors.Join(errs...)
}

// hostDiskIdentity hashes the first bytes of every block device node the workspace
// can open, in every device root; the harness compares the hashes with the node's
// disks. It never reads past diskIDBytes and never writes.
func hostDiskIdentity(_ context.Context, s probespec.Spec, o *obs) {
	nodes := discoverDevNodes(s, o)
	denied, blocks := 0, 0
	for _, n := range nodes {
		if !n.block {
			continue
		}
		blocks++
		id, err := diskID(n.path)
		switch {
		case errors.Is(err, fs.ErrPermission):
			// EPERM from the device cgroup is the runtime refusing the device: the
			// defence working, logged as such.
			denied++
			o.logf("open %s (%s): %v", n.path, n.rdev, err)
		case err != nil:
			o.logf("read %s (%s): %v", n.path, n.rdev, err)
		case id == "":
			o.logf("%s: first %d KiB blank, identifies nothing", n.path, diskIDBytes>>10)
		default:
			o.logf("%s (%s): %s%s", n.path, n.rdev, DiskIDPrefix, id)
			o.candidate(DiskIDPrefix + id)
		}
	}
	o.fact("blockNodes", fmt.Sprint(blocks))
	o.fact("blockNodesDenied", fmt.Sprint(denied))
	o.logf("%d block device nodes in the device roots, %d refused", blocks, denied)
}
