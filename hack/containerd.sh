#!/usr/bin/env bash
# Builds containerd 2.x (the kind node image's runtime; kind v0.33's own base pins the
# same version) from its published module into .cache/bin/node, once per version: no
# binary can be downloaded here and Debian bookworm's containerd is 1.6, older than
# kubelet 1.37 supports. `go install` refuses the module for its exclude directives,
# so it builds inside an unmodified copy of the module folder with -mod=mod. Also
# crictl (cri-tools), which kind's log collection runs in every node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
v=${KWC_CONTAINERD_VERSION:-v2.3.4}
crictl_v=v1.37.0
out=$root/.cache/bin/node
if [ "$(cat "$out/crictl.version" 2>/dev/null)" != "$crictl_v" ] || [ ! -x "$out/crictl" ]; then
  mkdir -p "$out"
  echo "kwc: building crictl $crictl_v for the kind node image (cached in .cache/bin/node)" >&2
  (cd /tmp && CGO_ENABLED=0 GOBIN="$out" go install -trimpath "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_v") \
    || { echo "kwc: building crictl $crictl_v failed" >&2; exit 1; }
  echo "$crictl_v" >"$out/crictl.version"
fi
stamp=$out/containerd.version
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$v" ] && [ -x "$out/containerd" ] && [ -x "$out/containerd-shim-runc-v2" ] && [ -x "$out/ctr" ]; then
  exit 0
fi
mkdir -p "$out"
src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/containerd/containerd/v2@$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "kwc: containerd $v is not in the Go module cache and could not be downloaded" >&2; exit 1; }
work=$root/.cache/src/containerd-$v
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -r "$src" "$work"
chmod -R u+w "$work"
cd "$work"
start=$(date +%s)
echo "kwc: building containerd $v for the kind node image (cached in .cache/bin/node)" >&2
ldflags="-X github.com/containerd/containerd/v2/version.Version=$v -X github.com/containerd/containerd/v2/version.Revision=module"
tags="no_aufs no_zfs no_btrfs no_devmapper"
for cmd in containerd containerd-shim-runc-v2 ctr; do
  go build -mod=mod -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$cmd.partial" "./cmd/$cmd" \
    || { echo "kwc: building $cmd of containerd $v failed (sources in $work)" >&2; exit 1; }
  mv "$out/$cmd.partial" "$out/$cmd"
done
echo "$v" >"$stamp"
cd "$root"
rm -rf "$work"
echo "kwc: built containerd $v in $(( $(date +%s) - start ))s" >&2
