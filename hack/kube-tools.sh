#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver at client-go's version, and etcd) and the
# local cluster's components (controller manager, scheduler, kubelet) from
# source into .cache/bin, once per version: no binary can be downloaded here. About 12
# minutes cold on 2 cores; seconds once cached. --node adds the kind node image's
# Kubernetes binaries, built with their version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
v=$(sed -n 's|^\tk8s.io/kubernetes \(v[0-9.]*\)$|\1|p' "$root/hack/tools/kube/go.mod")
[ -n "$v" ] || { echo "kwc: hack/tools/kube/go.mod does not pin k8s.io/kubernetes" >&2; exit 1; }
out=$root/.cache/bin
mkdir -p "$out"
cd "$root/hack/tools/kube"
build() { # name target
  [ -x "$out/$1" ] && return 0
  echo "kwc: building $1 for the API tests (cached in .cache/bin)" >&2
  start=$(date +%s)
  go build -o "$out/$1.partial" "$2"
  mv "$out/$1.partial" "$out/$1"
  echo "kwc: built $1 in $(( $(date +%s) - start ))s" >&2
}
build "kube-apiserver-$v" k8s.io/kubernetes/cmd/kube-apiserver
build "etcd-kube-$v" ./etcd
# The local cluster (internal/clusters/localcluster) the cluster target is tested against.
build "kube-controller-manager-$v" k8s.io/kubernetes/cmd/kube-controller-manager
build "kube-scheduler-$v" k8s.io/kubernetes/cmd/kube-scheduler
build "kubelet-$v" k8s.io/kubernetes/cmd/kubelet

# --node: what a kind node image holds besides the control plane above: kubeadm,
# kubectl and a kubelet that know their version (without it kubeadm calls itself
# v0.0.0-master and picks images and defaults for a version that does not exist).
[ "${1:-}" = "--node" ] || exit 0
minor=${v#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
versioned() { # name target
  [ -x "$out/node/$1" ] && return 0
  mkdir -p "$out/node"
  echo "kwc: building $1 $v for the kind node image (cached in .cache/bin/node)" >&2
  start=$(date +%s)
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/node/$1.partial" "$2"
  mv "$out/node/$1.partial" "$out/node/$1"
  echo "kwc: built $1 in $(( $(date +%s) - start ))s" >&2
}
versioned kubeadm k8s.io/kubernetes/cmd/kubeadm
versioned kubectl k8s.io/kubernetes/cmd/kubectl
versioned kubelet k8s.io/kubernetes/cmd/kubelet
versioned kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
versioned kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
versioned kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
versioned etcd ./etcd
