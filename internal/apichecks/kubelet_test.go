package apichecks

import (
	"context"
	"kwc.dev/kwc/internal/verdict"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// No kubelet can run here, so two stand-ins on loopback play one: locked down
// (401 without credentials, 403 for the workspace, no read-only port) and leaky
// (anonymous auth on, read-only port open). The check must tell them apart.
func kubelet(t *testing.T, anonymous bool, readOnly bool) Kubelet {
	t.Helper()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case anonymous:
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
