package probe

import (
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/probespec"
)

// devNode is a device node found in a device root, known by its number: a node is
// what it points at, whatever it is called (a host disk passed in as /dev/xvdz, the
// kernel log as /dev/klog).
type devNode struct {
	path  string
	block bool
	rdev  string // major:minor
}

// deviceRoots are the workspace's /dev and every devtmpfs mounted anywhere else (a
// host /dev given as a hostPath is the node's devtmpfs, with every node the node has).
func deviceRoots(ms []mountInfo) []string {
	roots := []string{"/dev"}
	for _, m := range ms {
		if m.fstype == "devtmpfs" && !slices.Contains(roots, m.point) {
			roots = append(roots, m.point)
		}
	}
	return roots
}

// devNodes walks every device root within the walker's bounds and returns each device
// node once per (kind, number), the first path that reached it standing for all.
func devNodes(roots []string, w *walker) []devNode {
	seen := map[string]bool{}
	var out []devNode
	for _, root := range roots {
		w.walk(root, func(p string, d fs.DirEntry) {
			if d.Type()&fs.ModeDevice == 0 {
				return
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return
			}
			n := devNode{path: p, block: d.Type()&fs.ModeCharDevice == 0,
				rdev: fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))}
			key := fmt.Sprintf("%v/%s", n.block, n.rdev)
			if seen[key] {
				return
			}
			seen[key] = true
			out = append(out, n)
		})
	}
	return out
}

// discoverDevNodes is every device node in every device root the workspace has,
// within the spec's bounds; the walk is recorded in the probe's facts.
func discoverDevNodes(s probespec.Spec, o *obs) []devNode {
	ms, err := mounts()
	if err != nil {
		o.logf("reading mountinfo: %v", err)
	}
	w := newWalker(s)
	nodes := devNodes(deviceRoots(ms), w)
	w.report(o, "dev")
	return nodes
}

// hostCharDevices are character devices that lead into the kernel or the host: having
// one is no escape by itself (the probes judge effects), but the evidence lists them.
var hostCharDevices = map[string]string{
	"1:1": "mem", "1:2": "kmem", "1:4": "port", "1:11": "kmsg",
	"10:232": "kvm", "10:238": "vhost-net", "10:241": "vhost-vsock", "10:237": "loop-control", "10:229": "fuse",
}

// kmsgRdev is /dev/kmsg's device number.
const kmsgRdev = "1:11"

// notableCharDevices names the host-leading character devices among nodes.
func notableCharDevices(nodes []devNode) string {
	var out []string
	for _, n := range nodes {
		if name, ok := hostCharDevices[n.rdev]; ok && !n.block {
			out = append(out, name+"="+n.path)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
