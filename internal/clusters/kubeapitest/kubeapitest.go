// Package kubeapitest runs a real kube-apiserver (with etcd) on loopback for tests, so
// the objects kwc generates are judged by the API server's own validation, defaulting
// and admission, and authorization questions get real RBAC answers. The binaries are
// built from source by hack/kube-tools.sh and cached under .cache/bin by version.
package kubeapitest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/e2e-framework/klient"
)

// Version is the Kubernetes version the harness runs: client-go's.
const Version = "v1.37.2"

// Tokens of the harness's identities.
const (
	AdminToken     = "kwc-admin-token"
	WorkspaceToken = "kwc-workspace-token"
	// WorkspaceUser is a plain user with no role: what a workspace's own identity is.
	WorkspaceUser = "kwc-workspace"
)

// ControlPlane is a running etcd + kube-apiserver.
type ControlPlane struct {
	dir     string
	host    string
	ca      []byte
	procs   []*exec.Cmd
	exited  chan string // the path of a process that ended
	logPath string
}

// start starts a process and reports on cp.exited when it ends.
func (cp *ControlPlane) start(c *exec.Cmd) error {
	if err := c.Start(); err != nil {
		return err
	}
	cp.procs = append(cp.procs, c)
	go func() {
		_ = c.Wait()
		select {
		case cp.exited <- filepath.Base(c.Path):
		default:
		}
	}()
	return nil
}

// binDir finds .cache/bin at the repository root.
func binDir() (string, error) {
	if d := os.Getenv("KWC_KUBE_BIN"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !strings.Contains(d, "hack/tools") {
			if b, _ := os.ReadFile(filepath.Join(d, "go.mod")); strings.HasPrefix(string(b), "module kwc.dev/kwc\n") {
				return filepath.Join(d, ".cache", "bin"), nil
			}
		}
	}
	return "", errors.New("cannot find the kwc repository root (set KWC_KUBE_BIN)")
}

// Options extend the control plane for a cluster with nodes (internal/clusters/localcluster).
type Options struct {
	// Dir holds the control plane's data; a temporary folder when empty.
	Dir string
	// Tokens are extra lines of the token file: token,user,uid,"group1,group2".
	Tokens []string
	// Authorization is --authorization-mode (default RBAC).
	Authorization string
	// Args are extra kube-apiserver flags.
	Args []string
}

// Binary is the path of a cached binary (kubelet, kube-scheduler, ...) at Version.
func Binary(name string) (string, error) {
	bins, err := binDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(bins, name+"-"+Version)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing: build the test cluster's binaries with `make kube-tools` (about 12 minutes cold on 2 cores, cached after)", p)
	}
	return p, nil
}

// Start starts etcd and kube-apiserver and waits until the API server is ready.
func Start(ctx context.Context) (*ControlPlane, error) { return StartWith(ctx, Options{}) }

// StartWith is Start with options.
func StartWith(ctx context.Context, o Options) (*ControlPlane, error) {
	apiserver, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcd, err := Binary("etcd-kube")
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "kwc-kubeapi-")
	} else {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{dir: dir, logPath: filepath.Join(dir, "control-plane.log"), exited: make(chan string, 2)}
	log, err := os.Create(cp.logPath)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	e := exec.Command(etcd, "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(ports[1]), "--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-cluster", "default=http://127.0.0.1:"+strconv.Itoa(ports[1]), "--log-level", "warn")
	e.Stdout, e.Stderr = log, log
	if err := cp.start(e); err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}

	saKey, err := writeKey(filepath.Join(dir, "sa.key"))
	if err != nil {
		cp.Stop()
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	lines := append([]string{AdminToken + `,kwc-admin,1,"system:masters"`, WorkspaceToken + "," + WorkspaceUser + ",2"}, o.Tokens...)
	if err := os.WriteFile(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	// Every address is loopback: the service range is configuration only, nothing is
	// ever sent to it.
	authz := o.Authorization
	if authz == "" {
		authz = "RBAC"
	}
	args := []string{"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[2]),
		"--advertise-address", "127.0.0.1", "--cert-dir", certDir, "--token-auth-file", tokens, "--authorization-mode", authz,
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/24", "--enable-priority-and-fairness=false", "--profiling=false",
		// The kubernetes Service would point at 127.0.0.1, which the reconciler refuses;
		// nothing here uses it.
		"--endpoint-reconciler-type=none",
		// As kind and kubeadm clusters run: privileged pods are a policy question for
		// RBAC and admission, not refused outright.
		"--allow-privileged=true"}
	a := exec.Command(apiserver, append(args, o.Args...)...)
	a.Stdout, a.Stderr = log, log
	if err := cp.start(a); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("starting kube-apiserver: %w", err)
	}
	cp.host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := cp.waitReady(ctx, certDir); err != nil {
		tail, _ := os.ReadFile(cp.logPath)
		cp.Stop()
		return nil, fmt.Errorf("%w\ncontrol-plane log tail:\n%s", err, logtail.Last(string(tail), 20))
	}
	return cp, nil
}

func (cp *ControlPlane) waitReady(ctx context.Context, certDir string) error {
	deadline := time.Now().Add(90 * time.Second)
	last := "no serving certificate yet"
	for time.Now().Before(deadline) {
		if ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err == nil {
			cp.ca = ca
			hc, err := rest.HTTPClientFor(cp.Config(AdminToken))
			if err != nil {
				return fmt.Errorf("client for %s: %w", cp.host, err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.host+"/readyz", nil)
			resp, err := hc.Do(req)
			if err != nil {
				last = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				last = fmt.Sprintf("/readyz: %s %.300s", resp.Status, b)
			}
		}
		select {
		case name := <-cp.exited:
			return fmt.Errorf("%s exited while starting", name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver was not ready within 90 s (last: %s)", last)
}

// Dir is the control plane's data folder: sa.key (the service-account signing key)
// and certs/apiserver.crt (the serving certificate, its own CA) are in it.
func (cp *ControlPlane) Dir() string { return cp.dir }

// LogPath is where etcd and kube-apiserver write.
func (cp *ControlPlane) LogPath() string { return cp.logPath }

// Config is a rest.Config for one of the harness's tokens.
func (cp *ControlPlane) Config(token string) *rest.Config {
	return &rest.Config{Host: cp.host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.ca, ServerName: "kubernetes.default.svc"}}
}

// WriteKubeconfig writes a kubeconfig for a token, for tools that take one (Helm).
func (cp *ControlPlane) WriteKubeconfig(path, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kwc"] = &clientcmdapi.Cluster{Server: cp.host, CertificateAuthorityData: cp.ca, TLSServerName: "kubernetes.default.svc"}
	cfg.AuthInfos["kwc"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kwc"] = &clientcmdapi.Context{Cluster: "kwc", AuthInfo: "kwc"}
	cfg.CurrentContext = "kwc"
	return clientcmd.WriteToFile(*cfg, path)
}

// Client is e2e-framework's klient for a token: what kwc's Kubernetes targets use.
func (cp *ControlPlane) Client(token string) (klient.Client, error) {
	return klient.New(cp.Config(token))
}

// Stop ends the processes and removes the data.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		_ = p.Process.Kill()
	}
	_ = os.RemoveAll(cp.dir)
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func writeKey(path string) (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return path, os.WriteFile(path, b, 0o600)
}

// TB is the part of testing.TB that ForTest uses: named here so that the local
// cluster, which uses this package outside tests, does not link the testing package.
type TB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
}

// ForTest starts a control plane for one test, stops it when the test ends, and
// returns a context bounded for the test and an admin client.
func ForTest(t TB) (context.Context, *ControlPlane, klient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cp, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	admin, err := cp.Client(AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cp, admin
}
