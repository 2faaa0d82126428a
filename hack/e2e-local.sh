#!/usr/bin/env bash
# Runs the cluster target against a one-node cluster made on this host from real
# components (internal/clusters/localcluster: kube-apiserver, controller manager, scheduler,
# kubelet, containerd, runc; no Kata), then removes the cluster. Extra arguments go to
# `make e2e` (e.g. KWC_FLAGS=--kwc.keep). The cluster's own logs are kept in the run's
# artifacts when the suite fails.
#
# --decoy is the negative control: the cluster gets kata-decoy (runc under a Kata
# name), the suite runs fixtures/configs/decoy-kata.yaml, and the verdict is the gate
# fixtures/policies/decoy-kata.yaml: the decoy lanes must fail escape for running on
# the node's kernel (the suite itself exits non-zero then, as it should).
set -euo pipefail
decoy=false
if [ "${1:-}" = "--decoy" ]; then
  decoy=true
  shift
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${KWC_LOCAL_DIR:-/tmp/kwc-local-$$}
env_file=$dir.env
bin=$root/.cache/bin/localcluster
go build -o "$bin" ./hack/localcluster
# Its own session: a Ctrl-C reaches the suite, which removes what it made while the
# cluster still answers; the cluster goes after, on exit.
setsid "$bin" --dir "$dir" --env "$env_file" --decoy-kata=$decoy &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 240); do
  [ -f "$env_file" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "kwc: the local cluster did not start" >&2; exit 1; }
  sleep 0.5
done
[ -f "$env_file" ] || { echo "kwc: the local cluster was not ready within 2 minutes" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
status=0
if $decoy; then
  make --no-print-directory e2e TARGET=cluster KWC_FLAGS="--kwc.config=$root/fixtures/configs/decoy-kata.yaml" "$@" || true
  go run ./cmd/kwc gate --policy fixtures/policies/decoy-kata.yaml reports/latest || status=$?
else
  make --no-print-directory e2e TARGET=cluster "$@" || status=$?
fi
if [ $status -ne 0 ] && [ -d reports/latest ]; then
  mkdir -p reports/latest/artifacts/local-cluster
  cp "$dir"/*.log reports/latest/artifacts/local-cluster/ 2>/dev/null || true
  cp "$dir"/control-plane/control-plane.log reports/latest/artifacts/local-cluster/ 2>/dev/null || true
fi
exit $status
