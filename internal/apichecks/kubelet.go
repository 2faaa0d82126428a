package apichecks

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"kwc.dev/kwc/internal/verdict"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kubelet is where the node's kubelet listens: the address is discovered from the
// cluster under test (the node's InternalIP, or the workspace pod's status.hostIP),
// never configured to point elsewhere.
type Kubelet struct {
	Host         string
	SecurePort   int // 10250
	ReadOnlyPort int // 10255
	// Token is the workspace identity's token, when one exists (a misconfiguration).
	Token string
}

// CheckKubelet asks the kubelet, anonymously and with the workspace's token if any,
// for its pod list, and checks that the read-only port is closed. It reads only
// (GET /pods); it never calls /run or /exec.
func CheckKubelet(ctx context.Context, k Kubelet) verdict.Finding {
	f := verdict.Finding{ID: "A04-kubelet-api", Title: "the kubelet refuses anonymous and workspace requests; its read-only port is closed", Techniques: []string{"T27", "P14"}}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		// The kubelet's serving certificate is its own; kwc asks only whether it answers.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	var open []string
	get := func(url, token string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	secure := "https://" + net.JoinHostPort(k.Host, strconv.Itoa(k.SecurePort)) + "/pods"
	for _, who := range []struct{ name, token string }{{"anonymous", ""}, {"the workspace token", k.Token}} {
		if who.name != "anonymous" && who.token == "" {
			continue
		}
		code, err := get(secure, who.token)
		switch {
		case err != nil:
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: %v", secure, who.name, err))
		case code == http.StatusOK:
			open = append(open, "GET /pods on "+strconv.Itoa(k.SecurePort)+" as "+who.name)
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: 200", secure, who.name))
		default:
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: %d", secure, who.name, code))
		}
	}
	ro := "http://" + net.JoinHostPort(k.Host, strconv.Itoa(k.ReadOnlyPort)) + "/pods"
	if code, err := get(ro, ""); err == nil {
		open = append(open, fmt.Sprintf("the read-only port %d answers (%d)", k.ReadOnlyPort, code))
		f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s: %d", ro, code))
	} else {
		f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s: %v", ro, err))
	}
	if len(open) > 0 {
		f.Result, f.Reason = verdict.Reached, strings.Join(open, "; ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "anonymous and workspace requests refused, read-only port closed"
	return f
}
