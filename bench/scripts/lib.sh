# Shared helpers for bench/scripts/*.sh (sourced, not run). Every process started here is killed on
# exit; everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
GO=${GO:-go}
TMP=$(mktemp -d /tmp/vlbench-${BENCH_NAME:-bench}.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

$GO build -o "$TMP/vlbench" ./cmd/vlbench
$GO build -o "$TMP/vlproxy" ./cmd/vlproxy
VB=$TMP/vlbench
VLPROXY_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- proxy cmd/vlproxy 2>/dev/null || echo "+uncommitted changes")

# start_fake_es VAR [fake-es flags…]: starts vlbench fake-es, sets VAR to host:port and VAR_PID.
start_fake_es() {
  local var=$1; shift
  local f=$TMP/$var.addr
  "$VB" fake-es -listen 127.0.0.1:0 -addrfile "$f" "$@" 2>"$TMP/$var.log" &
  PIDS+=("$!"); printf -v "${var}_PID" %s "$!"
  for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.1; done
  printf -v "$var" %s "$(cat "$f")"
}

# start_model VAR [fake-model flags…]: starts the model simulator, sets VAR to its base URL.
start_model() {
  local var=$1; shift
  local port; port=$("$VB" freeport)
  "$VB" fake-model -listen "127.0.0.1:$port" "$@" >"$TMP/$var.log" 2>&1 &
  PIDS+=("$!"); printf -v "${var}_PID" %s "$!"
  "$VB" wait -addr "127.0.0.1:$port"
  printf -v "$var" %s "http://127.0.0.1:$port"
}

# start_vlproxy VAR [vlproxy flags…]: starts vlproxy, sets VAR to its base URL and VAR_PID.
start_vlproxy() {
  local var=$1; shift
  local port; port=$("$VB" freeport)
  "$TMP/vlproxy" -listen "127.0.0.1:$port" -log-level warn "$@" >"$TMP/$var.log" 2>&1 &
  PIDS+=("$!"); printf -v "${var}_PID" %s "$!"
  "$VB" wait -addr "127.0.0.1:$port" || { cat "$TMP/$var.log" >&2; return 1; }
  printf -v "$var" %s "http://127.0.0.1:$port"
}

machine_line() {
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r), $($GO env GOVERSION), vlproxy commit $VLPROXY_REV; fake backend, vlproxy and load generator share the CPUs on loopback."
}
