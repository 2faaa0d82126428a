// kindsmoke creates a one-node kind cluster through kind's library from kwc's offline
// node image (make node-image), checks that the node is Ready at client-go's version
// and that a pod gets an address and runs, then deletes the cluster. It is the proof
// on every machine that kind itself works here; Ctrl-C deletes the cluster too. Exits
// 1 with the reason and kind's logs on any failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kwc.dev/kwc/internal/clusters/kindcluster"
	"kwc.dev/kwc/internal/clusters/kubeapitest"
	"kwc.dev/kwc/internal/runid"
	"kwc.dev/kwc/kindconfigs"
)

func main() {
	image := flag.String("node-image", "", "the node image (the reference make node-image printed)")
	logs := flag.String("logs", "", "where kind's logs go on failure (default: a folder in the temporary directory)")
	flag.Parse()
	if *image == "" {
		fmt.Fprintln(os.Stderr, "kindsmoke: --node-image is required (make node-image prints it)")
		os.Exit(2)
	}
	if err := run(*image, *logs); err != nil {
		fmt.Fprintf(os.Stderr, "kindsmoke: %v\n", err)
		os.Exit(1)
	}
}

func run(image, logDir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := "kwc-" + runid.New()
	cfg, err := kindconfigs.Load("offline.yaml", name)
	if err != nil {
		return err
	}
	for i := range cfg.Nodes {
		cfg.Nodes[i].Image = image
	}
	dir, err := os.MkdirTemp("", "kwc-kindsmoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if logDir == "" {
		logDir = filepath.Join(os.TempDir(), name+"-logs")
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	logf := func(f string, a ...any) {
		fmt.Printf("%s kindsmoke: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...))
	}
	start := time.Now()
	c, err := kindcluster.Create(cfg, kubeconfig, logDir, 0, logf)
	if err != nil {
		return err
	}
	created := time.Since(start)
	defer func() {
		logf("deleting kind cluster %s", name)
		if err := c.Delete(); err != nil {
			logf("%v (run: go run ./cmd/kwc cleanup --all)", err)
		}
	}()
	if err := check(ctx, kubeconfig, logf); err != nil {
		return fmt.Errorf("kind cluster %s from %s: %w", name, image, err)
	}
	logf("kind create took %s; node Ready and a pod ran %s after the start", created.Round(time.Second), time.Since(start).Round(time.Second))
	return nil
}

// check waits for the node to be Ready at client-go's version and for a pod (the
// pause image the node holds) to run with an address from the node's CNI.
func check(ctx context.Context, kubeconfig string, logf func(string, ...any)) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) == 0 {
			last = fmt.Sprintf("no node yet (%v)", err)
			return false, nil
		}
		n := nodes.Items[0]
		if v := n.Status.NodeInfo.KubeletVersion; v != kubeapitest.Version {
			return false, fmt.Errorf("node %s runs kubelet %s, want %s", n.Name, v, kubeapitest.Version)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				last = fmt.Sprintf("node %s Ready=%s: %s", n.Name, cond.Status, cond.Message)
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the node: %w (last: %s)", err, last)
	}
	logf("node Ready at %s", kubeapitest.Version)
	// The controller manager makes the namespace's default ServiceAccount shortly
	// after start; admission refuses pods until it exists.
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		last = fmt.Sprint(err)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the default ServiceAccount: %w (last: %s)", err, last)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kwc-smoke", Namespace: "default"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10.2", ImagePullPolicy: corev1.PullNever}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the smoke pod: %w", err)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("phase %s, IP %q", p.Status.Phase, p.Status.PodIP)
		if p.Status.Phase == corev1.PodFailed {
			return false, errors.New("the smoke pod failed: " + last)
		}
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the smoke pod: %w (last: %s)", err, last)
	}
	logf("pod ran (%s)", last)
	return nil
}
