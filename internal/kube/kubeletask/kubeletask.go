// Package kubeletask asks a node's kubelet, from wherever it runs (kwc-probe inside a
// workspace, or the harness), whether it answers a read-only request: GET /pods on
// the secure port anonymously and with a token, and on the read-only port. It never
// calls /run, /exec or anything that changes the node, and it dials only the host it
// is given, which the harness discovers from the cluster under test (the workspace
// node's InternalIP); nothing else. Judging the answers is apichecks'.
package kubeletask

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Request says where the kubelet listens and with which token to ask.
type Request struct {
	Host         string `json:"host"`
	SecurePort   int    `json:"securePort"`   // 10250
	ReadOnlyPort int    `json:"readOnlyPort"` // 10255
	// Token is the workspace identity's token, when one exists (a misconfiguration).
	Token string `json:"-"`
}

// Answer is one request's outcome: the HTTP status, or the error that stood in its way.
type Answer struct {
	URL    string `json:"url"`
	As     string `json:"as"`
	Status int    `json:"status,omitempty"`
	Err    string `json:"err,omitempty"`
}

// Ask sends the read-only requests and returns every answer.
func Ask(ctx context.Context, r Request) []Answer {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		// The kubelet's serving certificate is its own; kwc asks only whether it answers.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	get := func(url, as, token string) Answer {
		a := Answer{URL: url, As: as}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			a.Err = err.Error()
			return a
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			a.Err = err.Error()
			return a
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		a.Status = resp.StatusCode
		return a
	}
	secure := "https://" + net.JoinHostPort(r.Host, strconv.Itoa(r.SecurePort)) + "/pods"
	out := []Answer{get(secure, "anonymous", "")}
	if r.Token != "" {
		out = append(out, get(secure, "the workspace token", r.Token))
	}
	return append(out, get("http://"+net.JoinHostPort(r.Host, strconv.Itoa(r.ReadOnlyPort))+"/pods", "anonymous (read-only port)", ""))
}
