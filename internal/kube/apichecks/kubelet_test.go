package apichecks

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"kwc.dev/kwc/internal/escape/verdict"
	"kwc.dev/kwc/internal/kube/kubeletask"
)

// No kubelet can run here, so two stand-ins on loopback play one: locked down
// (401 without credentials, 403 for the workspace, no read-only port) and leaky
// (anonymous auth on, read-only port open). The check must tell them apart.
func kubelet(t *testing.T, anonymous bool, readOnly bool) Kubelet {
	t.Helper()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case anonymous, r.Header.Get("Authorization") == "Bearer harness-token":
			w.Write([]byte(`{"kind":"PodList","items":[]}`))
		case r.Header.Get("Authorization") == "":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	t.Cleanup(secure.Close)
	u, _ := url.Parse(secure.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	k := Kubelet{Host: host, Token: "workspace-token"}
	k.SecurePort, _ = strconv.Atoi(port)
	if readOnly {
		ro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
		t.Cleanup(ro.Close)
		ru, _ := url.Parse(ro.URL)
		_, p, _ := net.SplitHostPort(ru.Host)
		k.ReadOnlyPort, _ = strconv.Atoi(p)
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		k.ReadOnlyPort = l.Addr().(*net.TCPAddr).Port
		l.Close() // a port nobody listens on: refused
	}
	return k
}

func TestKubeletLockedDown(t *testing.T) {
	if f := CheckKubelet(context.Background(), kubelet(t, false, false)); f.Result != verdict.Blocked {
		t.Fatalf("%s: %s %v", f.Result, f.Reason, f.Evidence)
	}
}

func TestKubeletLeaky(t *testing.T) {
	f := CheckKubelet(context.Background(), kubelet(t, true, true))
	if f.Result != verdict.Reached || len(f.Evidence) != 3 {
		t.Fatalf("anonymous /pods and the read-only port must both count: %s %s %v", f.Result, f.Reason, f.Evidence)
	}
	if f := CheckKubelet(context.Background(), kubelet(t, false, true)); f.Result != verdict.Reached {
		t.Fatalf("an open read-only port alone is a path: %s", f.Result)
	}
}

// The control: the harness's own credential gets 200 from the locked-down stand-in, a
// refusal then stands; with no kubelet at all, a "refusal" is no evidence.
func TestKubeletControl(t *testing.T) {
	k := kubelet(t, false, false)
	answers := kubeletask.Ask(context.Background(), k)
	f := JudgeKubelet(answers)
	status, err := KubeletControl(context.Background(), &rest.Config{BearerToken: "harness-token"}, k.Host, k.SecurePort)
	if err != nil || status != 200 {
		t.Fatalf("control: %d %v", status, err)
	}
	if g := WithControl(f, answers, status, err); g.Result != verdict.Blocked || !strings.Contains(strings.Join(g.Evidence, "\n"), "control: GET /pods with the harness's credential: 200") {
		t.Fatalf("%+v", g)
	}
	// Nothing listens: the workspace got no answer and neither did the harness.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	none := kubeletask.Request{Host: "127.0.0.1", SecurePort: port, ReadOnlyPort: port}
	answers = kubeletask.Ask(context.Background(), none)
	status, err = KubeletControl(context.Background(), &rest.Config{BearerToken: "harness-token"}, "127.0.0.1", port)
	if g := WithControl(JudgeKubelet(answers), answers, status, err); g.Result != verdict.Error {
		t.Fatalf("a kubelet nobody reached is no evidence: %+v", g)
	}
}
