package probe

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"kwc.dev/kwc/internal/probespec"
)

// pseudoFS are filesystems that hold neither host files nor sockets of the host's
// runtimes; discovery does not walk them (procfs is searched by its own probes).
var pseudoFS = []string{"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "bpf", "pstore", "configfs", "fusectl", "hugetlbfs", "binfmt_misc", "nsfs", "autofs"}

// walker walks mounts within one probe's bounds and says what the bounds cut.
type walker struct {
	b        probespec.Bounds
	deadline time.Time
	walked   int
	cuts     []string
}

func newWalker(s probespec.Spec) *walker {
	b := s.Discovery.OrDefault()
	return &walker{b: b, deadline: time.Now().Add(time.Duration(b.WalkMS) * time.Millisecond)}
}

// cut says what the bounds left unseen, "" when nothing.
func (w *walker) cut() string { return strings.Join(w.cuts, "; ") }

// report records the walk in the probe's facts under prefix.
func (w *walker) report(o *obs, prefix string) {
	o.fact(prefix+"EntriesWalked", fmt.Sprint(w.walked))
	if c := w.cut(); c != "" {
		o.fact(prefix+"WalkCut", c)
		o.logf("the %s walk was cut: %s", prefix, c)
	}
}

// walk visits root and what lies below it, to the bounded depth, within one entry
// budget per root (a host root mounted whole must not use up the walk before a small
// mount beside it is looked at) and the probe's overall time.
func (w *walker) walk(root string, visit func(p string, d fs.DirEntry)) {
	if time.Now().After(w.deadline) {
		w.cuts = append(w.cuts, fmt.Sprintf("%s not walked: %dms spent", root, w.b.WalkMS))
		return
	}
	n := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n++
		w.walked++
		switch {
		case n > w.b.WalkEntries:
			w.cuts = append(w.cuts, fmt.Sprintf("%s: stopped after %d entries", root, w.b.WalkEntries))
			return fs.SkipAll
		case time.Now().After(w.deadline):
			w.cuts = append(w.cuts, fmt.Sprintf("%s: stopped after %dms", root, w.b.WalkMS))
			return fs.SkipAll
		case d.IsDir() && p != root && strings.Count(strings.TrimPrefix(p, root), "/") >= w.b.WalkDepth:
			return fs.SkipDir
		}
		visit(p, d)
		return nil
	})
}

// walkableMounts are the mounts discovery walks: every mount but the workspace's own
// root (its image holds nothing of the host, and a walk of / would cross into every
// other mount), pseudo filesystems, and the probe's own scratch folder. Mounts that
// are one file (a socket, a file bound on its own) come back apart.
func walkableMounts(ms []mountInfo, s probespec.Spec) (dirs []mountInfo, files []mountInfo) {
	seen := map[string]bool{}
	for _, m := range ms {
		if m.point == "/" || slices.Contains(pseudoFS, m.fstype) || seen[m.point] {
			continue
		}
		if s.TempDir != "" && (m.point == s.TempDir || strings.HasPrefix(m.point, s.TempDir+"/")) {
			continue
		}
		seen[m.point] = true
		st, err := os.Stat(m.point)
		switch {
		case err != nil:
		case st.IsDir():
			dirs = append(dirs, m)
		default:
			files = append(files, m)
		}
	}
	return dirs, files
}
