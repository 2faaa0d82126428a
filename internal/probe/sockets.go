package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"kwc.dev/kwc/internal/probespec"
)

// defaultSockets are where runtime sockets usually are; the spec may add more.
var defaultSockets = []string{"/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock",
	"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"}

// ContainerdUUID asks a containerd socket who it is (introspection Server: read-only).
func ContainerdUUID(ctx context.Context, socket string) (string, error) {
	return containerdUUID(ctx, socket)
}

func containerdUUID(ctx context.Context, socket string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	resp, err := introspection.NewIntrospectionClient(conn).Server(ctx, &emptypb.Empty{})
	if err != nil {
		return "", err
	}
	return resp.GetUUID(), nil
}

// runtimeSocket asks each Docker-API socket it finds for the daemon's identity (GET
// /info only; it never creates anything).
func runtimeSocket(ctx context.Context, s probespec.Spec, o *obs) {
	// Every socket in every mount the workspace has, wherever it is mounted: a host
	// /run or /var/run/docker mounted at /mnt/x exposes the engine at a path no list
	// names. A socket bind-mounted on its own is a mount point and is found too.
	ms, err := mounts()
	if err != nil {
		o.logf("reading mountinfo: %v", err)
	}
	found, walked, cut := discoverSockets(ms, time.Now().Add(socketWalkTime))
	o.fact("socketEntriesWalked", fmt.Sprint(walked))
	if cut != "" {
		o.fact("socketWalkCut", cut)
		o.logf("the socket walk was cut: %s", cut)
	}
	var socks []string
	for _, p := range append(append(append([]string(nil), s.Sockets...), defaultSockets...), found...) {
		if st, err := os.Stat(p); err != nil || st.Mode()&os.ModeSocket == 0 || slices.Contains(socks, p) {
			continue
		}
		if ttrpcSocket(p) {
			// A containerd shim speaks ttrpc, which answers neither identity question:
			// asking would only wait out the timeout.
			o.logf("%s: a containerd shim's ttrpc socket, not asked", p)
			continue
		}
		socks = append(socks, p)
	}
	if len(socks) > socketAskMax {
		o.fact("socketAskCut", fmt.Sprintf("asked the first %d of %d sockets", socketAskMax, len(socks)))
		o.logf("asking the first %d of %d sockets (named ones first)", socketAskMax, len(socks))
		socks = socks[:socketAskMax]
	}
	// Asked side by side, each with its own short timeout: one socket that never
	// answers (a shim's ttrpc socket, say) must not use up the probe's time.
	answers := make([]socketAnswer, len(socks))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, p := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			actx, cancel := context.WithTimeout(ctx, socketAskTimeout)
			defer cancel()
			answers[i] = askSocket(actx, p)
		}()
	}
	wg.Wait()
	for _, a := range answers {
		o.logf("%s", a.log)
		if a.candidate != "" {
			o.candidate(a.candidate)
		}
	}
	o.logf("%d sockets asked (%d found in mounts)", len(socks), len(found))
}

// ttrpcSocket names containerd's shim sockets (.../containerd/s/<hash>) and its ttrpc
// endpoint (containerd.sock.ttrpc).
func ttrpcSocket(p string) bool {
	return strings.HasSuffix(p, ".ttrpc") || strings.Contains(p, "/containerd/s/")
}

type socketAnswer struct{ candidate, log string }

// askSocket asks one socket who it is: the Docker API's GET /info, else containerd's
// introspection. Both only read.
func askSocket(ctx context.Context, p string) socketAnswer {
	c := http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		},
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/info", nil)
	resp, err := c.Do(req)
	if err != nil {
		// Not a Docker API socket: perhaps containerd's (a Kubernetes node's runtime).
		id, cerr := containerdUUID(ctx, p)
		if cerr != nil {
			return socketAnswer{"", fmt.Sprintf("GET /info on %s: %v; containerd introspection: %v", p, err, cerr)}
		}
		return socketAnswer{"containerd-uuid:" + id, fmt.Sprintf("containerd on %s: server %s", p, id)}
	}
	defer resp.Body.Close()
	var info struct{ ID, Name, KernelVersion, OperatingSystem string }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return socketAnswer{"", fmt.Sprintf("GET /info on %s: %s, undecodable: %v", p, resp.Status, err)}
	}
	return socketAnswer{"engine-id:" + info.ID, fmt.Sprintf("GET /info on %s: engine %s (%s, kernel %s)", p, info.ID, info.Name, info.KernelVersion)}
}

// Bounds of the socket discovery: the probe reports when one cut it, so a verdict says
// how far it looked.
const (
	socketWalkDepth   = 4
	socketWalkEntries = 5000 // per mount
	socketWalkTime    = 2 * time.Second
	socketAskMax      = 64
	socketAskTimeout  = 800 * time.Millisecond
)

// pseudoFS are filesystems that hold no unix sockets of the host's runtimes.
var pseudoFS = []string{"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "bpf", "pstore", "configfs", "fusectl", "hugetlbfs", "binfmt_misc"}

// discoverSockets walks every mount point except the workspace's own root (its image
// holds no host sockets, and a walk of / would cross into every other mount) to a
// bounded depth, and returns the unix sockets it finds.
func discoverSockets(ms []mountInfo, deadline time.Time) (found []string, walked int, cut string) {
	// Sockets mounted on their own first: cheap, and never lost to a walk's bound.
	var dirs []mountInfo
	for _, m := range ms {
		if m.point == "/" || slices.Contains(pseudoFS, m.fstype) {
			continue
		}
		if st, err := os.Stat(m.point); err == nil && st.Mode()&os.ModeSocket != 0 {
			found = append(found, m.point)
		} else if err == nil && st.IsDir() {
			dirs = append(dirs, m)
		}
	}
	// Each mount gets its own entry budget, so a host root mounted whole cannot use up
	// the walk before a small mount next to it is looked at.
	var cuts []string
	for _, m := range dirs {
		if time.Now().After(deadline) {
			cuts = append(cuts, fmt.Sprintf("%s not walked: %s spent", m.point, socketWalkTime))
			continue
		}
		n := 0
		_ = filepath.WalkDir(m.point, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n++
			walked++
			switch {
			case n > socketWalkEntries:
				cuts = append(cuts, fmt.Sprintf("%s: stopped after %d entries", m.point, socketWalkEntries))
				return fs.SkipAll
			case time.Now().After(deadline):
				cuts = append(cuts, fmt.Sprintf("%s: stopped after %s", m.point, socketWalkTime))
				return fs.SkipAll
			case d.IsDir() && p != m.point && strings.Count(strings.TrimPrefix(p, m.point), "/") >= socketWalkDepth:
				return fs.SkipDir
			case d.Type()&fs.ModeSocket != 0:
				found = append(found, p)
			}
			return nil
		})
	}
	cut = strings.Join(cuts, "; ")
	return found, walked, cut
}
