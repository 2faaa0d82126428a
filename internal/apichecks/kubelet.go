package apichecks

import (
	"context"
	"fmt"
	"strings"

	"kwc.dev/kwc/internal/kubeletask"
	"kwc.dev/kwc/internal/verdict"
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
