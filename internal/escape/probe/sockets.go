package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
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

// runtimeSocket asks each runtime socket it finds for the daemon's identity (Docker's
// GET /info or containerd's introspection; both only read, nothing is created).
func runtimeSocket(ctx context.Context, s probespec.Spec, o *obs) {
	b := s.Discovery.OrDefault()
	// Every socket in every mount the workspace has, wherever it is mounted: a host
	// /run or /var/run/docker mounted at /mnt/x exposes the engine at a path no list
	// names. A socket bind-mounted on its own is a mount point and is found too.
	ms, err := mounts()
	if err != nil {
		o.logf("reading mountinfo: %v", err)
	}
	w := newWalker(s)
	found := discoverSockets(ms, s, w)
	w.report(o, "socket")
	// Abstract sockets live in the network namespace, not in a mount: a workspace in
	// the node's network namespace sees every one the node's daemons listen on.
	abstract, aerr := listeningAbstract()
	if aerr != nil {
		o.logf("reading /proc/net/unix: %v", aerr)
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
	for _, a := range abstract {
		switch {
		case a == "@"+s.AbstractSocket:
			// The canary listener: P09's, it answers only the challenge.
		case ttrpcSocket(a) || strings.Contains(a, "containerd-shim"):
			o.logf("%s: a containerd shim's abstract socket, not asked (ttrpc answers no identity question)", a)
		default:
			socks = append(socks, a)
		}
	}
	o.fact("abstractListening", fmt.Sprint(len(abstract)))
	if len(socks) > b.AskSockets {
		o.fact("socketAskCut", fmt.Sprintf("asked the first %d of %d sockets", b.AskSockets, len(socks)))
		o.logf("asking the first %d of %d sockets (named ones first)", b.AskSockets, len(socks))
		socks = socks[:b.AskSockets]
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
			actx, cancel := context.WithTimeout(ctx, time.Duration(b.AskMS)*time.Millisecond)
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
	o.logf("%d sockets asked (%d found in mounts, %d abstract listening)", len(socks), len(found), len(abstract))
}

// listeningAbstract lists the abstract unix sockets that listen in this network
// namespace ("@name"), from /proc/net/unix (flag __SO_ACCEPTCON, 00010000).
func listeningAbstract() ([]string, error) {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 || f[3] != "00010000" || !strings.HasPrefix(f[7], "@") {
			continue
		}
		if !slices.Contains(out, f[7]) {
			out = append(out, f[7])
		}
	}
	return out, nil
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

// discoverSockets returns the unix sockets in every walkable mount: sockets mounted
// on their own first (cheap, and never lost to a walk's bound), then what the walk of
// each mounted folder finds.
func discoverSockets(ms []mountInfo, s probespec.Spec, w *walker) (found []string) {
	dirs, files := walkableMounts(ms, s)
	for _, m := range files {
		if st, err := os.Stat(m.point); err == nil && st.Mode()&os.ModeSocket != 0 {
			found = append(found, m.point)
		}
	}
	for _, m := range dirs {
		w.walk(m.point, func(p string, d fs.DirEntry) {
			if d.Type()&fs.ModeSocket != 0 {
				found = append(found, p)
			}
		})
	}
	return found
}
