#!/usr/bin/env bash
# make bench's lane half: runs the docker-target default lanes and then the kind
# target's on kwc's offline node image (make e2e-kind), each once with one Ginkgo
# process and once with PARALLEL (default: twice the cores), prints their phases side by side with the ratio of wall times, and fails
# when any verdict differs between the serial and the parallel run (kwc compare):
# running lanes in parallel must change no verdict. Uses DOCKER_HOST when it answers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
par=${PARALLEL:-$(( $(nproc) * 2 ))}
if [ "$par" -lt 2 ]; then
  echo "kwc bench: PARALLEL=$par: the comparison needs at least 2 processes" >&2
  exit 2
fi
if ! docker version >/dev/null 2>&1; then
  eval "$(hack/engine.sh start)"
  trap 'hack/engine.sh stop' EXIT
fi
logs=$(mktemp -d /tmp/kwc-bench-XXXXXX)
status=0
# run NAME PROCS CMD...: one suite run; prints its report folder. A run whose suite
# fails still has a report, and its verdicts are compared like any other.
run() {
  local name=$1 procs=$2
  shift 2
  echo "kwc bench: $name with $procs process(es) (log $logs/$name-$procs.log)" >&2
  "$@" PARALLEL="$procs" >"$logs/$name-$procs.log" 2>&1 || echo "kwc bench: $name with $procs process(es) exited non-zero (see its log)" >&2
  readlink -f reports/latest
}
for suite in docker kind; do
  case $suite in
    docker) cmd=(make --no-print-directory e2e TARGET=docker) ;;
    kind) cmd=(make --no-print-directory e2e-kind) ;;
  esac
  serial=$(run "$suite" 1 "${cmd[@]}")
  parallel=$(run "$suite" "$par" "${cmd[@]}")
  echo "== $suite: serial $(basename "$serial") against $par processes $(basename "$parallel")"
  go run ./cmd/kwc compare --times "$serial" "$parallel" || status=1
done
exit $status
