// Package kubeapitest runs a real kube-apiserver (with etcd, through controller-runtime's
// envtest) on loopback for tests, so the objects kwc generates are judged by the API
// server's own validation, defaulting and admission, and authorization questions get
// real RBAC answers. The binaries are built from source by hack/kube-tools.sh into
// .cache/bin/node, stamped with their version. Version is also the Kubernetes version
// of kwc's kind node image.
package kubeapitest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kwc.dev/kwc/internal/logtail"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
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

// ControlPlane is a running etcd + kube-apiserver, started by controller-runtime's
// envtest from the binaries kwc builds.
type ControlPlane struct {
	dir     string
	host    string
	ca      []byte
	env     *envtest.Environment
	log     *os.File
	logPath string
}

// binDir finds .cache/bin/node at the repository root: hack/kube-tools.sh builds one
// set of static, versioned Kubernetes binaries there for the tests and the kind node
// image alike.
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
				return filepath.Join(d, ".cache", "bin", "node"), nil
			}
		}
	}
	return "", errors.New("cannot find the kwc repository root (set KWC_KUBE_BIN)")
}

// Binary is the path of a cached binary (kube-apiserver, etcd, kubelet, ...) built at
// Version: the folder's version stamp must say so, or the binary is refused.
func Binary(name string) (string, error) {
	bins, err := binDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(bins, name)
	fix := "build them with `make kube-tools` (about 5 minutes cold on 2 cores, cached after)"
	if b, err := os.ReadFile(filepath.Join(bins, "kubernetes.version")); err != nil || strings.TrimSpace(string(b)) != Version {
		return "", fmt.Errorf("the Kubernetes binaries in %s are not at %s (stamp %q): %s", bins, Version, strings.TrimSpace(string(b)), fix)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing: %s", p, fix)
	}
	return p, nil
}

// Start starts etcd and kube-apiserver and waits until the API server is ready.
// envtest starts the two and waits for the API server's health; kwc adds the token
// users and its own service-account key, and keeps the ServiceAccount admission plugin
// on, which envtest turns off, because the API checks judge the tokens it mounts.
func Start(ctx context.Context) (*ControlPlane, error) {
	apiserver, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcd, err := Binary("etcd")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kwc-kubeapi-")
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{dir: dir, logPath: filepath.Join(dir, "control-plane.log")}
	if cp.log, err = os.Create(cp.logPath); err != nil {
		return nil, err
	}
	saKey, err := writeKey(filepath.Join(dir, "sa.key"))
	if err != nil {
		cp.Stop()
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	lines := []string{AdminToken + `,kwc-admin,1,"system:masters"`, WorkspaceToken + "," + WorkspaceUser + ",2"}
	if err := os.WriteFile(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		cp.Stop()
		return nil, err
	}
	api := &envtest.APIServer{Path: apiserver, CertDir: certDir, Out: cp.log, Err: cp.log, StartTimeout: 90 * time.Second, StopTimeout: 20 * time.Second}
	args := api.Configure()
	args.Disable("disable-admission-plugins")
	args.Set("token-auth-file", tokens).Set("authorization-mode", "RBAC").
		Set("service-account-issuer", "https://kubernetes.default.svc").
		Set("service-account-key-file", saKey).Set("service-account-signing-key-file", saKey).
		// Every address is loopback: the service range is configuration only, nothing
		// is ever sent to it.
		Set("service-cluster-ip-range", "10.96.0.0/24").Set("advertise-address", "127.0.0.1").
		Set("enable-priority-and-fairness", "false").Set("profiling", "false").
		// The kubernetes Service would point at 127.0.0.1, which the reconciler refuses;
		// nothing here uses it.
		Set("endpoint-reconciler-type", "none").
		// As kind and kubeadm clusters run: privileged pods are a policy question for
		// RBAC and admission, not refused outright.
		Set("allow-privileged", "true")
	cp.env = &envtest.Environment{ControlPlane: envtest.ControlPlane{
		Etcd:      &envtest.Etcd{Path: etcd, DataDir: filepath.Join(dir, "etcd"), Out: cp.log, Err: cp.log, StartTimeout: 60 * time.Second},
		APIServer: api,
	}}
	cfg, err := cp.env.Start()
	if err != nil {
		tail, _ := os.ReadFile(cp.logPath)
		cp.Stop()
		return nil, fmt.Errorf("starting etcd and kube-apiserver (envtest): %w\ncontrol-plane log tail:\n%s", err, logtail.Last(string(tail), 20))
	}
	cp.host, cp.ca = cfg.Host, cfg.CAData
	if !strings.HasPrefix(cp.host, "https://") {
		cp.host = "https://" + cp.host
	}
	return cp, ctx.Err()
}

// LogPath is where etcd and kube-apiserver write.
func (cp *ControlPlane) LogPath() string { return cp.logPath }

// Config is a rest.Config for one of the harness's tokens.
func (cp *ControlPlane) Config(token string) *rest.Config {
	return &rest.Config{Host: cp.host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.ca}}
}

// WriteKubeconfig writes a kubeconfig for a token, for tools that take one (Helm).
func (cp *ControlPlane) WriteKubeconfig(path, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kwc"] = &clientcmdapi.Cluster{Server: cp.host, CertificateAuthorityData: cp.ca}
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
	if cp.env != nil {
		_ = cp.env.Stop()
	}
	if cp.log != nil {
		cp.log.Close()
	}
	_ = os.RemoveAll(cp.dir)
}

func writeKey(path string) (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return path, os.WriteFile(path, b, 0o600)
}

// TB is the part of testing.TB that ForTest uses: named here so that this package,
// which the suite and the CLI link, does not link the testing package.
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
