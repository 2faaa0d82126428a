#!/usr/bin/env bash
# Builds gVisor's runsc from its Go module at a pinned version into .cache/bin, once.
# Static (CGO_ENABLED=0): a dynamically linked runsc dies inside its own chroot.
# Prints the path; with --engine-runtime, the engine runtime entry instead
# (name=/path args, as ../shared/ci/engine.sh's KWC_ENGINE_RUNTIMES takes it):
#   systrap       gVisor's platform that needs no KVM
#   --allow-suid  sudo works for the workspace user
#   --net-raw, --allow-packet-socket-write   dockerd inside the sandbox (privileged lane)
# RUNSC_VERSION overrides the pin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${RUNSC_VERSION:-v0.0.0-20260905035102-160fafc42237}
bin=$root/.cache/bin
out=$bin/runsc
RUNSC_ARGS="--platform=systrap --allow-suid --net-raw --allow-packet-socket-write"
say() { if [ "${1:-}" = --engine-runtime ]; then echo "runsc=$out $RUNSC_ARGS"; else echo "$out"; fi; }
if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$version" ]; then
  say "$@"; exit 0
fi
mkdir -p "$bin"
echo "kwc: building runsc $version from gvisor.dev/gvisor (about 2 min, once)" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! GOBIN=$tmp CGO_ENABLED=0 GOFLAGS=-mod=mod go install "gvisor.dev/gvisor/runsc@$version" >"$tmp/build.log" 2>&1; then
  echo "kwc: building runsc $version failed:" >&2; tail -n 15 "$tmp/build.log" >&2
  echo "  fix: check that the Go module proxy answers (go env GOPROXY), or set RUNSC_VERSION" >&2
  exit 1
fi
mv "$tmp/runsc" "$out"
echo "$version" >"$out.version"
say "$@"
