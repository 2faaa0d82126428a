#!/usr/bin/env bash
# A private Docker engine for `make test` when none answers: its own data-root and
# socket under .cache/engine, no bridge and no iptables (the suite's workspaces use
# network none or host), and gVisor's runsc registered when .cache/bin/runsc exists
# (hack/runsc.sh builds it). Prints the DOCKER_HOST export for eval.
#   eval "$(hack/engine.sh start)"; ...; hack/engine.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
E=${KWC_ENGINE_DIR:-$root/.cache/engine}
sock=$E/docker.sock
up() { DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1; }
case "${1:-}" in
start)
  if ! up; then
    command -v dockerd >/dev/null || { echo "kwc: dockerd is missing: apt-get install docker.io" >&2; exit 1; }
    mkdir -p "$E"; conf=()
    if [ -x "$root/.cache/bin/runsc" ]; then
      entry=$("$root/hack/runsc.sh" --engine-runtime); read -r -a a <<<"${entry#runsc=}"
      args=$(printf '"%s",' "${a[@]:1}"); args=${args%,}
      printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": [%s]}}}\n' "${a[0]}" "$args" >"$E/daemon.json"
      conf=(--config-file "$E/daemon.json")
    fi
    setsid dockerd "${conf[@]}" --data-root "$E/data" --exec-root "$E/exec" --pidfile "$E/dockerd.pid" \
      -H "unix://$sock" --bridge=none --iptables=false --ip6tables=false \
      >"$E/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 150); do up && break; sleep 0.2; done
    up || { echo "kwc: the private dockerd did not start; see $E/dockerd.log:" >&2; tail -n 5 "$E/dockerd.log" >&2; exit 1; }
    echo "kwc: started a private engine at unix://$sock" >&2
  fi
  echo "export DOCKER_HOST=unix://$sock"
  ;;
stop)
  if [ -f "$E/dockerd.pid" ]; then
    pid=$(cat "$E/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  umount "$E/exec/netns/default" 2>/dev/null || true
  ;;
*) echo "usage: hack/engine.sh start|stop" >&2; exit 2 ;;
esac
