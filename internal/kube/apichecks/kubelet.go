package apichecks

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/kube/kubeletask"
)

// Kubelet is where the node's kubelet listens: the address is discovered from the
// cluster under test (the node's InternalIP, or the workspace pod's status.hostIP),
// never configured to point elsewhere.
type Kubelet = kubeletask.Request

// CheckKubelet asks the kubelet from here (the harness) and judges the answers.
func CheckKubelet(ctx context.Context, k Kubelet) verdict.Finding {
	return JudgeKubelet(kubeletask.Ask(ctx, k))
}

// JudgeKubelet decides the kubelet check from its answers, wherever they were asked
// (kwc-probe asks from inside the workspace): any 200 on /pods, or a read-only port
// that answers at all, is a path to the node.
func JudgeKubelet(answers []kubeletask.Answer) verdict.Finding {
	f := verdict.Finding{ID: "A04-kubelet-api", Title: "the kubelet refuses anonymous and workspace requests; its read-only port is closed", Techniques: []string{"T27", "P14"}}
	var open []string
	for _, a := range answers {
		readOnly := strings.HasPrefix(a.URL, "http://")
		switch {
		case a.Err != "":
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: %s", a.URL, a.As, a.Err))
		case readOnly:
			open = append(open, fmt.Sprintf("the read-only port answers (%d)", a.Status))
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s: %d", a.URL, a.Status))
		case a.Status == 200:
			open = append(open, "GET /pods as "+a.As)
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: 200", a.URL, a.As))
		default:
			f.Evidence = append(f.Evidence, fmt.Sprintf("GET %s as %s: %d", a.URL, a.As, a.Status))
		}
	}
	if len(answers) == 0 {
		f.Result, f.Reason = verdict.Error, "no answer recorded"
		return f
	}
	if len(open) > 0 {
		f.Result, f.Reason = verdict.Reached, strings.Join(open, "; ")
		return f
	}
	f.Result, f.Reason = verdict.Blocked, "anonymous and workspace requests refused, read-only port closed"
	return f
}

// KubeletControl asks the same kubelet GET /pods with the harness's own credential
// (the kubeconfig's client certificate or token), which a working kubelet must
// accept: it proves the address is a live kubelet that can answer, so a refusal seen
// from the workspace means something. The kubelet's serving certificate is its own,
// not the API server's, so it is not verified.
func KubeletControl(ctx context.Context, harness *rest.Config, host string, port int) (int, error) {
	cfg := rest.CopyConfig(harness)
	cfg.TLSClientConfig.Insecure = true
	cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.ServerName = nil, "", ""
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(host, strconv.Itoa(port))+"/pods", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WithControl adds the control's outcome to the kubelet finding. A refusal needs one
// of two proofs that a kubelet was there to refuse: an HTTP answer to the workspace,
// or a 200 to the harness; with neither, the check saw nothing.
func WithControl(f verdict.Finding, answers []kubeletask.Answer, status int, err error) verdict.Finding {
	switch {
	case err != nil:
		f.Evidence = append(f.Evidence, "control: GET /pods with the harness's credential: "+err.Error())
	default:
		f.Evidence = append(f.Evidence, fmt.Sprintf("control: GET /pods with the harness's credential: %d", status))
	}
	if f.Result != verdict.Blocked || (err == nil && status == http.StatusOK) {
		return f
	}
	for _, a := range answers {
		if a.Status != 0 && strings.HasPrefix(a.URL, "https://") {
			return f
		}
	}
	f.Result, f.Reason = verdict.Error, "neither the workspace nor the harness got an answer from the kubelet: this check saw nothing"
	return f
}
