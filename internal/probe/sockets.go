package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
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
	socks := append(append([]string(nil), s.Sockets...), defaultSockets...)
	// A socket bind-mounted into the workspace is a mount point of its own.
	if ms, err := mounts(); err == nil {
		for _, m := range ms {
			if st, err := os.Stat(m.point); err == nil && st.Mode()&os.ModeSocket != 0 {
				socks = append(socks, m.point)
			}
		}
	}
	slices.Sort(socks)
	socks = slices.Compact(socks)
	found := 0
	for _, p := range socks {
		st, err := os.Stat(p)
		if err != nil || st.Mode()&os.ModeSocket == 0 {
			continue
		}
		found++
		c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", p)
			},
		}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/info", nil)
		resp, err := c.Do(req)
		if err != nil {
			// Not a Docker API socket: perhaps containerd's (a Kubernetes node's runtime).
			if id, cerr := containerdUUID(ctx, p); cerr == nil {
				o.logf("containerd on %s: server %s", p, id)
				o.candidate("containerd-uuid:" + id)
			} else {
				o.logf("GET /info on %s: %v; containerd introspection: %v", p, err, cerr)
			}
			continue
		}
		var info struct{ ID, Name, KernelVersion, OperatingSystem string }
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil {
			o.logf("GET /info on %s: %s, undecodable: %v", p, resp.Status, err)
			continue
		}
		o.logf("GET /info on %s: engine %s (%s, kernel %s)", p, info.ID, info.Name, info.KernelVersion)
		o.candidate(fmt.Sprintf("engine-id:%s", info.ID))
	}
	o.logf("%d runtime sockets found", found)
}
