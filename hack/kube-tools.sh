#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver at client-go's version, and etcd) and the
# local cluster's components (controller manager, scheduler, kubelet) from
# source into .cache/bin, once per version: no binary can be downloaded here. About 12
# minutes cold on 2 cores; seconds once cached.
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
