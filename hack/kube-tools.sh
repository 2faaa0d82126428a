#!/usr/bin/env bash
# Builds the Kubernetes binaries kwc needs from source into .cache/bin/node, once per
# version (no binary can be downloaded here), static and stamped with their version:
# without the stamp kubeadm calls itself v0.0.0-master and picks images and defaults
# for a version that does not exist.
#   (no flag)  kube-apiserver and etcd: the real API server the unit tests start
#              through envtest (internal/clusters/kubeapitest)
#   --node     also kubeadm, kubelet, kubectl, controller manager and scheduler: the
#              kind node image's (make node-image)
# One set serves both, so nothing is built twice. About 9 minutes cold on 2 cores for
# the whole set; seconds once cached. A changed version rebuilds the set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
v=$(sed -n 's|^\tk8s.io/kubernetes \(v[0-9.]*\)$|\1|p' "$root/hack/tools/kube/go.mod")
[ -n "$v" ] || { echo "kwc: hack/tools/kube/go.mod does not pin k8s.io/kubernetes" >&2; exit 1; }
out=$root/.cache/bin/node
stamp=$out/kubernetes.version
mkdir -p "$out"
if [ "$(cat "$stamp" 2>/dev/null)" != "$v" ]; then
  rm -f "$out"/{kubeadm,kubectl,kubelet,kube-apiserver,kube-controller-manager,kube-scheduler,etcd}
  echo "$v" >"$stamp"
fi
cd "$root/hack/tools/kube"
minor=${v#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
build() { # name target
  [ -x "$out/$1" ] && return 0
  echo "kwc: building $1 $v (cached in .cache/bin/node)" >&2
  start=$(date +%s)
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$1.partial" "$2"
  mv "$out/$1.partial" "$out/$1"
  echo "kwc: built $1 in $(( $(date +%s) - start ))s" >&2
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build etcd ./etcd
[ "${1:-}" = "--node" ] || exit 0
build kubeadm k8s.io/kubernetes/cmd/kubeadm
build kubectl k8s.io/kubernetes/cmd/kubectl
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
