// Package localcluster assembles a one-node Kubernetes cluster on this host from real
// components: etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built
// from source at client-go's version), a private containerd with runc and the bridge
// CNI, and a kubelet. It exists so the cluster target is exercised end to end where no
// kind node image or Kata artifact can be fetched: every pod, exec, copy, DaemonSet and
// kubelet answer in such a run comes from the real component, only Kata is absent.
//
// Everything it starts lives under one folder and one bridge, and Down removes it:
// pods first (so the kubelet stops their sandboxes), then the processes, then leftover
// shims, mounts, cgroups and the bridge.
package localcluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/images/baseimage"
	"kwc.dev/kwc/internal/images/localregistry"
	"kwc.dev/kwc/internal/logtail"
	"kwc.dev/kwc/internal/mounts"
)

// NodeToken is the kubelet's credential (user system:node:kwc-local).
const NodeToken = "kwc-node-token"

// Options say where the cluster lives.
type Options struct {
	// Dir holds everything the cluster writes; it is removed by Down.
	Dir  string
	Logf func(string, ...any)
	// Decoy adds the kata-decoy RuntimeClass (runc under a Kata-like name): lanes under
	// it must fail, which proves the suite tells a VM from a container.
	Decoy bool
}

// Cluster is a running local cluster.
type Cluster struct {
	o  Options
	cp *kubeapitest.ControlPlane
	// Kubeconfig is the admin kubeconfig (Dir/kubeconfig).
	Kubeconfig string
	// Registry serves images to the node over plain HTTP on 127.0.0.1.
	Registry *localregistry.Registry
	// ContainerdSocket is the node's CRI socket; ContainerdConfig its configuration.
	ContainerdSocket, ContainerdConfig string
	procs                              []*exec.Cmd
	bridgeMade                         bool
	// clientCA is the CA the kubelet trusts for the API server's client certificate.
	clientCA string
}

// Prerequisites lists what is missing on this host, each with its fix.
func Prerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "must run as root: it starts containerd and a kubelet")
	}
	for _, b := range []string{"kube-apiserver", "etcd-kube", "kube-controller-manager", "kube-scheduler", "kubelet"} {
		if _, err := kubeapitest.Binary(b); err != nil {
			missing = append(missing, err.Error())
		}
	}
	for bin, pkg := range map[string]string{"containerd": "containerd", "runc": "runc", "ip": "iproute2"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s is not installed: apt-get install %s", bin, pkg))
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "the CNI plugins are not installed: apt-get install containernetworking-plugins")
	}
	if _, err := net.InterfaceByName(Bridge); err == nil {
		missing = append(missing, fmt.Sprintf("bridge %s exists: another local cluster runs, or one was left behind (stop it, or: ip link del %s)", Bridge, Bridge))
	}
	sort.Strings(missing)
	return missing
}

// Up starts the cluster and returns when the node is Ready.
func Up(ctx context.Context, o Options) (c *Cluster, err error) {
	if m := Prerequisites(); len(m) > 0 {
		return nil, fmt.Errorf("the local cluster cannot start:\n  - %s", strings.Join(m, "\n  - "))
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	c = &Cluster{o: o, ContainerdSocket: filepath.Join(o.Dir, "containerd", "containerd.sock"),
		ContainerdConfig: filepath.Join(o.Dir, "containerd", "config.toml"), Kubeconfig: filepath.Join(o.Dir, "kubeconfig")}
	defer func() {
		if err != nil {
			c.Down(context.Background())
		}
	}()
	if err := c.makeBridge(); err != nil {
		return c, err
	}
	if err := c.startRegistry(ctx); err != nil {
		return c, err
	}
	if err := c.startContainerd(ctx); err != nil {
		return c, err
	}
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	if err := c.startKubelet(ctx); err != nil {
		return c, err
	}
	if o.Decoy {
		cs, err := c.Clientset()
		if err != nil {
			return c, err
		}
		rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: DecoyHandler}, Handler: DecoyHandler,
			Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("130Mi"), corev1.ResourceCPU: resource.MustParse("250m")}}}
		if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
			return c, fmt.Errorf("creating RuntimeClass %s: %w", DecoyHandler, err)
		}
	}
	return c, nil
}

func (c *Cluster) path(p ...string) string { return filepath.Join(append([]string{c.o.Dir}, p...)...) }

func (c *Cluster) makeBridge() error {
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", NodeIP + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		c.bridgeMade = true
	}
	return nil
}

// startRegistry serves the sandbox (pause) image, made from busybox-static, and
// whatever the suite pushes.
func (c *Cluster) startRegistry(ctx context.Context) error {
	r, err := localregistry.Start()
	if err != nil {
		return err
	}
	c.Registry = r
	img, err := pauseImage()
	if err != nil {
		return err
	}
	if _, err := r.Push(ctx, "kwc/pause:1", img); err != nil {
		return fmt.Errorf("pushing the sandbox image: %w", err)
	}
	hosts := c.path("certs.d", r.Host())
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(hosts, "hosts.toml"), registryHosts(r.Host()), 0o644)
}

// pauseImage holds a pod's namespaces: a shell that sleeps and exits on TERM.
func pauseImage() (v1.Image, error) {
	img, err := baseimage.Busybox(baseimage.DefaultBusybox)
	if err != nil {
		return nil, err
	}
	return baseimage.WithEntrypoint(img, []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}, "pause")
}

func (c *Cluster) startContainerd(ctx context.Context) error {
	for _, d := range []string{"containerd", "cni"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	cfg, err := containerdConfig(c.o.Dir, c.Registry.Host()+"/kwc/pause:1", c.o.Decoy)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.ContainerdConfig, cfg, 0o644); err != nil {
		return err
	}
	if c.o.Decoy {
		if err := os.MkdirAll(c.path("kata"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c.path("kata", "configuration-decoy.toml"), []byte(decoyKataConfig), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.path("cni", "10-kwc-local.conflist"), cniConfig(), 0o644); err != nil {
		return err
	}
	if err := c.run("containerd", "containerd", "--config", c.ContainerdConfig); err != nil {
		return err
	}
	return c.waitFor(ctx, "containerd", 30*time.Second, func() error {
		conn, err := net.Dial("unix", c.ContainerdSocket)
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// run starts a process with its output in Dir/<name>.log.
func (c *Cluster) run(name, bin string, args ...string) error {
	log, err := os.Create(c.path(name + ".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: an interrupt of the harness reaches it through Down, in
	// order, not all at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	log.Close()
	c.procs = append(c.procs, cmd)
	return nil
}

// waitFor polls ready until it succeeds, the deadline passes or the process named
// exits (its log tail is in the error).
func (c *Cluster) waitFor(ctx context.Context, name string, d time.Duration, ready func() error) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if last = ready(); last == nil {
			return nil
		}
		for _, p := range c.procs {
			if filepath.Base(p.Path) != name && !strings.HasPrefix(filepath.Base(p.Path), name+"-") {
				continue
			}
			if err := p.Process.Signal(syscall.Signal(0)); err != nil {
				return fmt.Errorf("%s exited while starting: %s", name, c.logTail(name))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s (%v): %s", name, d, last, c.logTail(name))
}

func (c *Cluster) logTail(name string) string {
	b, _ := os.ReadFile(c.path(name + ".log"))
	return "\n" + logtail.Last(string(b), 15)
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	clientCA, clientCert, clientKey, err := kubeletClientPKI(c.path("pki"))
	if err != nil {
		return err
	}
	cp, err := kubeapitest.StartWith(ctx, kubeapitest.Options{
		Dir:           c.path("control-plane"),
		Tokens:        []string{NodeToken + ",system:node:" + NodeName + ",3,\"system:nodes\""},
		Authorization: "Node,RBAC",
		Args: []string{"--kubelet-client-certificate=" + clientCert, "--kubelet-client-key=" + clientKey,
			"--kubelet-preferred-address-types=InternalIP", "--enable-admission-plugins=NodeRestriction"},
	})
	if err != nil {
		return err
	}
	c.cp, c.clientCA = cp, clientCA
	if err := cp.WriteKubeconfig(c.Kubeconfig, kubeapitest.AdminToken); err != nil {
		return err
	}
	saKey := filepath.Join(cp.Dir(), "sa.key")
	apiCA := cp.CAFile()
	kcm, err := kubeapitest.Binary("kube-controller-manager")
	if err != nil {
		return err
	}
	if err := c.run("kube-controller-manager", kcm, "--kubeconfig", c.Kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--service-account-private-key-file", saKey,
		"--root-ca-file", apiCA, "--use-service-account-credentials=false",
		// No cloud and no pod CIDR allocation: the bridge plugin's host-local IPAM owns
		// the node's addresses.
		"--controllers", "*,-nodeipam"); err != nil {
		return err
	}
	sched, err := kubeapitest.Binary("kube-scheduler")
	if err != nil {
		return err
	}
	return c.run("kube-scheduler", sched, "--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0")
}

func (c *Cluster) startKubelet(ctx context.Context) error {
	kcfg, err := kubeletConfig(c.ContainerdSocket, c.clientCA)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.path("kubelet.yaml"), kcfg, 0o644); err != nil {
		return err
	}
	nodeKubeconfig := c.path("kubelet.kubeconfig")
	if err := c.writeKubeconfig(nodeKubeconfig, NodeToken); err != nil {
		return err
	}
	bin, err := kubeapitest.Binary("kubelet")
	if err != nil {
		return err
	}
	if err := c.run("kubelet", bin, "--config", c.path("kubelet.yaml"), "--kubeconfig", nodeKubeconfig,
		"--root-dir", c.path("kubelet"), "--hostname-override", NodeName, "--node-ip", NodeIP, "--v", "1"); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	c.o.Logf("local cluster: waiting for node %s to be Ready", NodeName)
	// The controller manager's first visible work: a namespace's default ServiceAccount,
	// which every pod needs before admission accepts it.
	if err := c.waitFor(ctx, "kube-controller-manager", time.Minute, func() error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	return c.waitFor(ctx, "kubelet", 3*time.Minute, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s", cond.Reason, cond.Message)
			}
		}
		return errors.New("node has no Ready condition yet")
	})
}

func (c *Cluster) writeKubeconfig(path, token string) error {
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"kwc": {Token: token}}
	return clientcmd.WriteToFile(*cfg, path)
}

// Clientset is an admin client.
func (c *Cluster) Clientset() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// kubeletClientPKI makes the CA the kubelet trusts for client certificates and the
// API server's client certificate (exec, logs, port-forward go through it).
func kubeletClientPKI(dir string) (caPath, certPath, keyPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", err
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kwc-local-kubelet-client-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caPath, certPath, keyPath = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "apiserver-kubelet-client.crt"), filepath.Join(dir, "apiserver-kubelet-client.key")
	for p, blk := range map[string]*pem.Block{
		caPath:   {Type: "CERTIFICATE", Bytes: caDER},
		certPath: {Type: "CERTIFICATE", Bytes: der},
		keyPath:  {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
	} {
		if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caPath, certPath, keyPath, nil
}

// Down removes everything Up made, in an order that leaves nothing running: the pods
// through the kubelet (which stops their sandboxes and tears down their network), the
// processes, then any task, mount, cgroup or bridge left behind. It reports what it
// could not remove.
func (c *Cluster) Down(ctx context.Context) error {
	var problems []string
	if c.cp != nil {
		if err := c.deletePods(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	// The kubelet and controllers first, then the API server, containerd last: it is
	// asked to remove whatever container is left before it goes.
	var containerd *exec.Cmd
	for i := len(c.procs) - 1; i >= 0; i-- {
		if filepath.Base(c.procs[i].Path) == "containerd" {
			containerd = c.procs[i]
			continue
		}
		stop(c.procs[i])
	}
	if c.cp != nil {
		c.cp.Stop()
	}
	if containerd != nil {
		if err := c.sweepTasks(); err != nil {
			problems = append(problems, err.Error())
		}
		stop(containerd)
	}
	if c.Registry != nil {
		_ = c.Registry.Close()
	}
	problems = append(problems, killShims(c.ContainerdSocket)...)
	if _, err := mounts.DetachUnder(c.o.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	removeCgroups("kubepods")
	if c.bridgeMade {
		if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("removing bridge %s: %v %s", Bridge, err, out))
		}
	}
	if err := os.RemoveAll(c.o.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("local cluster teardown left: %s", strings.Join(problems, "; "))
	}
	return nil
}

// deletePods deletes every pod with a short grace period and waits until the kubelet
// confirms each is gone, so their sandboxes and pod networks are torn down properly.
func (c *Cluster) deletePods(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	grace := int64(1)
	// The API server may still be answering a cancelled suite's last requests: retry.
	var nss *corev1.NamespaceList
	for {
		nss, err = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("listing namespaces: %w", err)
		case <-time.After(time.Second):
		}
	}
	for _, ns := range nss.Items {
		_ = cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	}
	for {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			n := -1
			if pods != nil {
				n = len(pods.Items)
			}
			return fmt.Errorf("%d pod(s) still present after 90 s", n)
		case <-time.After(time.Second):
		}
	}
}

func stop(p *exec.Cmd) {
	if p.Process == nil {
		return
	}
	_ = p.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.Process.Kill()
		<-done
	}
}

// sweepTasks kills and deletes any container the kubelet did not stop, through
// containerd itself, so their rootfs mounts go with them.
func (c *Cluster) sweepTasks() error {
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command("ctr", append([]string{"--address", c.ContainerdSocket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := ctr("tasks", "list", "--quiet")
	if err != nil {
		return fmt.Errorf("listing containerd tasks: %v %s", err, out)
	}
	ids := strings.Fields(out)
	// TERM first, so a pod that holds something on the host (the node agent and its
	// canaries) can let go of it; KILL what is left.
	for _, id := range ids {
		_, _ = ctr("tasks", "kill", "--all", "--signal", "SIGTERM", id)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if left, _ := ctr("tasks", "list"); !strings.Contains(left, "RUNNING") {
			break
		}
	}
	for _, id := range ids {
		_, _ = ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id)
		time.Sleep(200 * time.Millisecond)
		_, _ = ctr("tasks", "delete", "--force", id)
	}
	cs, _ := ctr("containers", "list", "--quiet")
	for _, id := range strings.Fields(cs) {
		_, _ = ctr("containers", "delete", id)
	}
	return nil
}

// killShims ends containerd shims started for this cluster's socket.
func killShims(socket string) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "containerd-shim") && strings.Contains(cmd, socket) {
			var pid int
			if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				left = append(left, "a containerd shim (pid "+e.Name()+", killed)")
			}
		}
	}
	return left
}

// removeCgroups removes the kubelet's empty cgroup tree (name) under every v1
// hierarchy, deepest first; a cgroup that still has tasks stays.
func removeCgroups(name string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
	}
}
