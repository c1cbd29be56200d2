#!/usr/bin/env bash
# make bench-passthrough: vlproxy vs nginx vs direct in front of `vlbench fake-es`, all on loopback.
# Writes the "passthrough" section of BENCHMARKS.md and bench/results/passthrough.{svg,json}.
# Then Debian's wrk (C, closed loop, much lighter than vlbench's Go client) drives _doc GETs and
# _search (distinct bodies: result-cache misses; one body: hits) at nginx, the bare fasthttp proxy,
# vlproxy in its default configuration (result cache on) and vlproxy with the cache off, and the
# section ends with the issue's targets, met or missed.
# Tunables (env): PT_WRK (1; 0 skips the wrk part), PT_WRK_DURATION (5s per run), PT_WRK_ROUNDS (3),
#   PT_COMPARE_BIN (another vlproxy binary, e.g. built from main: the wrk part also runs it in its
#   default configuration as target "vlproxy-before", for a before/after ratio from one run),
#   PT_CAPACITY (6s), PT_LEVEL (9s), PT_ROUNDS (3): measured time per target, split over the rounds, PT_LEVELS (10,25,50,75),
#   PT_HITS (5), PT_SOURCE_BYTES (150), PT_OUT (BENCHMARKS.md), VLPROXY_BIN (built from ./cmd/vlproxy),
#   PT_NICE (default -5 when permitted, 0 = off): niceness of every benchmark process, so that other
#   work on a shared machine disturbs the measurement less; the report says so.
#   PT_PIN (0; 1 = the pinned run, section "passthrough-pinned"): every proxy on CPU 0 with one
#   thread of work (GOMAXPROCS=1, one nginx worker), the fake backend and wrk on CPU 1, so that the
#   proxies do not share a core with the load and their CPU per request is less noisy; only the
#   run is otherwise the same.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
GO=${GO:-go}
CAP=${PT_CAPACITY:-6s}
LEVEL=${PT_LEVEL:-9s}
ROUNDS=${PT_ROUNDS:-3}
LEVELS=${PT_LEVELS:-10,25,50,75}
HITS=${PT_HITS:-5}
SRC=${PT_SOURCE_BYTES:-150}
OUT=${PT_OUT:-BENCHMARKS.md}

WRK=${PT_WRK:-1}
WRK_DUR=${PT_WRK_DURATION:-5s}
WRK_ROUNDS=${PT_WRK_ROUNDS:-3}

need_nginx=; need_wrk=
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_nginx=1
[ "$WRK" = 0 ] || command -v wrk >/dev/null || need_wrk=1
if [ -n "$need_nginx$need_wrk" ]; then
  echo "installing ${need_nginx:+nginx }${need_wrk:+wrk }from Debian" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  if [ -n "$need_nginx" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx
  fi
  [ -z "$need_wrk" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

TMP=$(mktemp -d /tmp/vlbench-pt.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

$GO build -o "$TMP/vlbench" ./cmd/vlbench
if [ -n "${VLPROXY_BIN:-}" ]; then
  cp "$VLPROXY_BIN" "$TMP/vlproxy"
  REV=${VLPROXY_REV:-prebuilt $VLPROXY_BIN}
else
  $GO build -o "$TMP/vlproxy" ./cmd/vlproxy
  REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- proxy cmd/vlproxy 2>/dev/null || echo "+uncommitted changes")
fi
VB=$TMP/vlbench

# Default: niceness -5 when allowed (root), so other work on a shared box disturbs the three
# contenders less; PT_NICE=0 turns it off.
if [ -z "${PT_NICE+x}" ] && nice -n -5 true 2>/dev/null; then PT_NICE=-5; fi
[ "${PT_NICE:-0}" = 0 ] && PT_NICE=
NICE=()
[ -n "${PT_NICE:-}" ] && NICE=(nice -n "$PT_NICE")

# Same parallelism for both proxies: nginx workers = vlproxy's GOMAXPROCS.
PROCS=${GOMAXPROCS:-$(nproc)}
PIN=${PT_PIN:-0}
PROXY_CPU=(); LOAD_CPU=(); SECTION=passthrough
if [ "$PIN" != 0 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "PT_PIN needs 2 CPUs" >&2; exit 1; }
    PROCS=1; PROXY_CPU=(taskset -c 0); LOAD_CPU=(taskset -c 1); SECTION=passthrough-pinned
fi

"${NICE[@]}" "${LOAD_CPU[@]}" "$VB" fake-es -listen 127.0.0.1:0 -addrfile "$TMP/es.addr" -hits "$HITS" -source-bytes "$SRC" 2>"$TMP/fake-es.log" &
ES_PID=$!; PIDS+=("$ES_PID")
for _ in $(seq 100); do [ -s "$TMP/es.addr" ] && break; sleep 0.1; done
ES=$(cat "$TMP/es.addr")

VP_PORT=$("$VB" freeport)
# Pass-through means no result cache (identical requests would otherwise never reach the backend).
VP_ARGS=()
if "$TMP/vlproxy" -help 2>&1 | grep -q -- '-result-cache-size'; then VP_ARGS+=(-result-cache-size 0); fi
GOMAXPROCS=$PROCS "${NICE[@]}" "${PROXY_CPU[@]}" "$TMP/vlproxy" -listen "127.0.0.1:$VP_PORT" -upstream "http://$ES" "${VP_ARGS[@]}" >"$TMP/vlproxy.log" 2>&1 &
VP_PID=$!; PIDS+=("$VP_PID")

# vlproxy as users run it: default configuration, result cache on (only for the wrk part).
VD_PORT=$("$VB" freeport)
if [ "$WRK" != 0 ]; then
  GOMAXPROCS=$PROCS "${NICE[@]}" "${PROXY_CPU[@]}" "$TMP/vlproxy" -listen "127.0.0.1:$VD_PORT" -upstream "http://$ES" >"$TMP/vlproxy-default.log" 2>&1 &
  VD_PID=$!; PIDS+=("$VD_PID")
fi

NG_PORT=$("$VB" freeport)
mkdir -p "$TMP/nginx"
chmod 755 "$TMP"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes $PROCS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 1000000;
  upstream es {
    server $ES;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NG_PORT;
    client_max_body_size 0;
    location / {
      proxy_pass http://es;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
CONF
"${NICE[@]}" "${PROXY_CPU[@]}" "$NGINX" -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NG_PID=$!; PIDS+=("$NG_PID")

# The floor of any fasthttp proxy on this machine: HostClient.Do and nothing else.
BP_PORT=$("$VB" freeport)
GOMAXPROCS=$PROCS "${NICE[@]}" "${PROXY_CPU[@]}" "$VB" bare-proxy -listen "127.0.0.1:$BP_PORT" -upstream "$ES" >"$TMP/bare.log" 2>&1 &
BP_PID=$!; PIDS+=("$BP_PID")

"$VB" wait -addr "127.0.0.1:$VP_PORT" -timeout 20s || { cat "$TMP/vlproxy.log" >&2; exit 1; }
"$VB" wait -addr "127.0.0.1:$NG_PORT" -timeout 20s || { cat "$TMP/nginx/error.log" >&2; exit 1; }
"$VB" wait -addr "127.0.0.1:$BP_PORT" -timeout 20s || { cat "$TMP/bare.log" >&2; exit 1; }
[ "$WRK" = 0 ] || "$VB" wait -addr "127.0.0.1:$VD_PORT" -timeout 20s || { cat "$TMP/vlproxy-default.log" >&2; exit 1; }
CMP_ARGS=()
if [ "$WRK" != 0 ] && [ -n "${PT_COMPARE_BIN:-}" ]; then
  VC_PORT=$("$VB" freeport)
  cp "$PT_COMPARE_BIN" "$TMP/vlproxy-before"
  GOMAXPROCS=$PROCS "${NICE[@]}" "${PROXY_CPU[@]}" "$TMP/vlproxy-before" -listen "127.0.0.1:$VC_PORT" -upstream "http://$ES" >"$TMP/vlproxy-before.log" 2>&1 &
  VC_PID=$!; PIDS+=("$VC_PID")
  "$VB" wait -addr "127.0.0.1:$VC_PORT" -timeout 20s || { cat "$TMP/vlproxy-before.log" >&2; exit 1; }
  CMP_ARGS=(-target "vlproxy-before=http://127.0.0.1:$VC_PORT" -pid "vlproxy-before=$VC_PID" -baselines nginx,fasthttp-bare,vlproxy-before)
fi

NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
mkdir -p bench/results
ARGS=(-target "direct=http://$ES" -target "vlproxy-nocache=http://127.0.0.1:$VP_PORT" -target "nginx=http://127.0.0.1:$NG_PORT"
  -target "fasthttp-bare=http://127.0.0.1:$BP_PORT"
  -pid "vlproxy-nocache=$VP_PID" -pid "nginx=$NG_PID" -pid "fasthttp-bare=$BP_PID" -pid "backend=$ES_PID"
  -capacity-duration "$CAP" -level-duration "$LEVEL" -rounds "$ROUNDS" -levels "$LEVELS" -quiet)
NOTE="unpinned"; [ "$PIN" = 0 ] || NOTE="pinned"
[ -n "${PT_NICE:-}" ] && NOTE="$NOTE, all benchmark processes at niceness $PT_NICE"
REPORT=()
if [ "$PIN" != 0 ]; then
  REPORT=(-title "Pass-through, pinned: proxies on one core, load and backend on the other"
    -generated-by "bash bench/scripts/passthrough-pinned.sh"
    -layout "Every proxy runs on CPU 0 with one thread of work (\`taskset -c 0\`, GOMAXPROCS=1, nginx worker_processes 1); the fake backend and the load generators (vlbench, wrk) run on CPU 1 (\`taskset -c 1\`). The proxies then never share a core with the load, which makes their CPU per request steadier; each proxy's capacity is one core's worth, unless CPU 1 (backend plus load generator) saturates first, in which case the fastest contenders tie on req/s.")
fi
RUN_CMD="make bench-passthrough    # = bash bench/scripts/passthrough.sh"
[ "$PIN" = 0 ] || RUN_CMD="bash bench/scripts/passthrough-pinned.sh    # = PT_PIN=1 bash bench/scripts/passthrough.sh"
"${NICE[@]}" "${LOAD_CPU[@]}" "$VB" passthrough "${ARGS[@]}" \
  -out "" -svg "bench/results/$SECTION.svg" -json "bench/results/$SECTION.json" "${REPORT[@]}" \
  -machine "$NGINX_VERSION (worker_processes $PROCS, upstream keepalive 128, access_log off)" \
  -machine "vlproxy GOMAXPROCS=$PROCS (commit $REV)" \
  -machine "fake ES: $HITS hits x $SRC B _source per _search" \
  -machine "$NOTE" \
  -command "$RUN_CMD" \
  -command "vlbench fake-es -listen 127.0.0.1:0 -hits $HITS -source-bytes $SRC" \
  -command "GOMAXPROCS=$PROCS vlproxy -listen 127.0.0.1:P1 -upstream http://FAKE_ES ${VP_ARGS[*]}" \
  -command "nginx -c nginx.conf   # generated: worker_processes $PROCS; upstream keepalive 128; access_log off" \
  -command "GOMAXPROCS=$PROCS vlbench bare-proxy -listen 127.0.0.1:P3 -upstream FAKE_ES   # HostClient.Do only: the fasthttp floor" \
  -command "vlbench passthrough -target direct=http://FAKE_ES -target vlproxy-nocache=http://127.0.0.1:P1 -target nginx=http://127.0.0.1:P2 -target fasthttp-bare=http://127.0.0.1:P3 -pid vlproxy-nocache=PID -pid nginx=PID -pid fasthttp-bare=PID -pid backend=PID -capacity-duration $CAP -level-duration $LEVEL -rounds $ROUNDS -levels $LEVELS" \
  >"$TMP/section.md"

if [ "$WRK" != 0 ]; then
  {
    echo
    echo "### wrk: \`_doc\` GET and \`_search\` with the default configuration (result cache on) and with the cache off"
    echo
    echo "Same processes and machine as above, plus vlproxy in its default configuration (\`vlproxy\`: result cache on; \`vlproxy-nocache\` is the process above, \`-result-cache-size 0\`). The bare fasthttp proxy and nginx have no cache, so every request of theirs is a pass-through."
    echo
    echo '```'
    echo "GOMAXPROCS=$PROCS vlproxy -listen 127.0.0.1:P4 -upstream http://FAKE_ES   # default configuration"
    echo "vlbench wrk -target nginx=http://127.0.0.1:P2 -target fasthttp-bare=http://127.0.0.1:P3 -target vlproxy=http://127.0.0.1:P4 -target vlproxy-nocache=http://127.0.0.1:P1 -pid NAME=PID… -duration $WRK_DUR -rounds $WRK_ROUNDS"
    echo '```'
    if [ ${#CMP_ARGS[@]} -gt 0 ]; then
      echo
      echo "\`vlproxy-before\` is ${PT_COMPARE_REV:-$PT_COMPARE_BIN} in its default configuration, run in the same rounds for a before/after ratio (CPU ÷ vlproxy-before in the last column)."
    fi
    echo
  } >>"$TMP/section.md"
  "${NICE[@]}" "${LOAD_CPU[@]}" "$VB" wrk -target "nginx=http://127.0.0.1:$NG_PORT" -target "fasthttp-bare=http://127.0.0.1:$BP_PORT" \
    -target "vlproxy=http://127.0.0.1:$VD_PORT" -target "vlproxy-nocache=http://127.0.0.1:$VP_PORT" \
    -pid "nginx=$NG_PID" -pid "fasthttp-bare=$BP_PID" -pid "vlproxy=$VD_PID" -pid "vlproxy-nocache=$VP_PID" \
    "${CMP_ARGS[@]}" -duration "$WRK_DUR" -rounds "$WRK_ROUNDS" -json "bench/results/$SECTION-wrk.json" -markdown "$TMP/wrk.md"
  cat "$TMP/wrk.md" >>"$TMP/section.md"
fi
if [ -n "$OUT" ]; then
  "$VB" section -out "$OUT" -name "$SECTION" -file "$TMP/section.md"
  echo "wrote the $SECTION section of $OUT" >&2
else
  cat "$TMP/section.md"
fi
