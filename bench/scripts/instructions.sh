#!/usr/bin/env bash
# User-space instructions per request (section "instructions" of BENCHMARKS.md): the bare fasthttp
# proxy, vlproxy in its default configuration (result cache on) and with the cache off, each run
# under `valgrind --tool=callgrind` in front of `vlbench fake-es`, driven by wrk with the same three
# scenarios as the pass-through section's wrk part (a _doc GET, a _search with a distinct body per
# request, the same _search repeated). Instruction counts do not move with the machine's load, so
# this is the before/after measure that a shared 2-core VM can repeat; it is blind to kernel time.
# Env: INS_DURATION (8s measured per target and scenario, after INS_WARMUP=2s), INS_CONNECTIONS (16),
#   INS_COMPARE_BIN (another vlproxy binary, run as "vlproxy-before" in its default configuration),
#   INS_TOP (12 functions of vlproxy's own profile per scenario), INS_OUT (BENCHMARKS.md; "" prints).
BENCH_NAME=instructions
source "$(dirname "$0")/lib.sh"
DUR=${INS_DURATION:-8s}; WARM=${INS_WARMUP:-2s}; CONNS=${INS_CONNECTIONS:-16}; TOP=${INS_TOP:-12}
OUT=${INS_OUT-BENCHMARKS.md}

for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || need_pkgs=1
done
if [ -n "${need_pkgs:-}" ]; then
  echo "installing valgrind and wrk from Debian" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind wrk >/dev/null
fi

start_fake_es ES -hits 5 -source-bytes 150

# valgrind needs static binaries (cgo's thread start trips callgrind's signal bookkeeping) and no
# asynchronous preemption (SIGURG every 10 ms would do the same); both are set for every target.
CGO_ENABLED=0 $GO build -o "$TMP/vlbench-static" ./cmd/vlbench
CGO_ENABLED=0 $GO build -o "$TMP/vlproxy-static" ./cmd/vlproxy
export GODEBUG=asyncpreemptoff=1

# scripts: doc-get, search-miss (a counter in the body), search-hit.
cat >"$TMP/doc-get.lua" <<'LUA'
wrk.method = "GET"
wrk.path = "/bench/_doc/1"
LUA
cat >"$TMP/search-miss.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/bench/_search"
wrk.headers["Content-Type"] = "application/json"
local n = 0
function init(args) n = tonumber(args[1]) or 0 end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"query":{"match":{"title":"shirt %d"}}}', n))
end
LUA
cat >"$TMP/search-hit.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/bench/_search"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":{"match":{"title":"shirt"}}}'
LUA
SCENARIOS=(doc-get search-miss search-hit)

# start_cg NAME CMD…: starts CMD under callgrind; sets NAME_PORT, NAME_PID.
start_cg() {
  local name=$1; shift
  local port; port=$("$VB" freeport)
  local var=${name//-/_}
  valgrind --tool=callgrind --separate-recs=1 --callgrind-out-file="$TMP/cg.$name" \
    "$@" -listen "127.0.0.1:$port" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!"); printf -v "${var}_PID" %s "$!"
  "$VB" wait -addr "127.0.0.1:$port" -timeout 60s || { cat "$TMP/$name.log" >&2; exit 1; }
  printf -v "${var}_PORT" %s "$port"
}

TARGETS=(fasthttp-bare vlproxy vlproxy-nocache)
GOMAXPROCS=2 start_cg fasthttp-bare "$TMP/vlbench-static" bare-proxy -upstream "$ES"
GOMAXPROCS=2 start_cg vlproxy "$TMP/vlproxy-static" -upstream "http://$ES" -log-level warn
GOMAXPROCS=2 start_cg vlproxy-nocache "$TMP/vlproxy-static" -upstream "http://$ES" -log-level warn -result-cache-size 0
if [ -n "${INS_COMPARE_BIN:-}" ]; then
  cp "$INS_COMPARE_BIN" "$TMP/vlproxy-before"
  GOMAXPROCS=2 start_cg vlproxy-before "$TMP/vlproxy-before" -upstream "http://$ES" -log-level warn
  TARGETS+=(vlproxy-before)
fi

# total_ir FILE: the instruction total of a callgrind dump.
total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

declare -A IR
offset=$(( $(date +%s) * 100000 ))
for t in "${TARGETS[@]}"; do
  var=${t//-/_}; pidv=${var}_PID; portv=${var}_PORT
  pid=${!pidv}; url="http://127.0.0.1:${!portv}"
  for sc in "${SCENARIOS[@]}"; do
    offset=$((offset + 10000000))
    wrk -t1 -c"$CONNS" -d"$WARM" -s "$TMP/$sc.lua" "$url" -- "$offset" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    offset=$((offset + 10000000))
    out=$(wrk -t1 -c"$CONNS" -d"$DUR" -s "$TMP/$sc.lua" "$url" -- "$offset")
    before=$(ls "$TMP"/cg."$t"* 2>/dev/null | wc -l)
    callgrind_control -d "$sc" "$pid" >/dev/null
    # the newest dump of this process
    for _ in $(seq 50); do [ "$(ls "$TMP"/cg."$t"* 2>/dev/null | wc -l)" -gt "$before" ] && break; sleep 0.1; done
    dump=$(ls -t "$TMP"/cg."$t"* | head -1)
    reqs=$(awk '/requests in/ {print $1; exit}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF; exit}' <<<"$out")
    [ -z "$non2xx" ] || { echo "$t $sc: $non2xx non-2xx answers" >&2; exit 1; }
    ir=$(total_ir "$dump")
    IR[$t,$sc]=$(( ir / reqs ))
    echo "$t $sc: $reqs requests, $ir instructions, ${IR[$t,$sc]} per request" >&2
    cp "$dump" "$TMP/final.$t.$sc"
  done
done

{
  echo "## Instructions per request: vlproxy vs the bare fasthttp proxy"
  echo
  echo "Generated by \`bash bench/scripts/instructions.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). $(machine_line)"
  echo
  echo "User-space instructions (\`valgrind --tool=callgrind\`, every thread of the process, counters zeroed after a $WARM warm-up), divided by the requests wrk (\`-t1 -c$CONNS -d$DUR\`) counted; the backend is \`vlbench fake-es\` (5 hits × 150 B), outside valgrind. The same binary and scenario give the same count whatever else the machine is doing (within about 1 %), so these ratios are the repeatable before/after measure; kernel time, which is most of a pass-through's CPU, is not in them (the wrk tables of the pass-through section have it)."
  echo
  printf '| scenario |'; for t in "${TARGETS[@]}"; do printf ' %s |' "$t"; done; printf ' vlproxy ÷ bare | nocache ÷ bare |'
  [ -n "${INS_COMPARE_BIN:-}" ] && printf ' vlproxy ÷ before |'
  echo
  printf '|---|'; for _ in "${TARGETS[@]}"; do printf -- '---:|'; done; printf -- '---:|---:|'
  [ -n "${INS_COMPARE_BIN:-}" ] && printf -- '---:|'
  echo
  for sc in "${SCENARIOS[@]}"; do
    printf '| %s |' "$sc"
    for t in "${TARGETS[@]}"; do printf ' %s |' "${IR[$t,$sc]}"; done
    awk -v a="${IR[vlproxy,$sc]}" -v b="${IR[fasthttp-bare,$sc]}" -v c="${IR[vlproxy-nocache,$sc]}" 'BEGIN {printf " %.2f | %.2f |", a/b, c/b}'
    [ -n "${INS_COMPARE_BIN:-}" ] && awk -v a="${IR[vlproxy,$sc]}" -v b="${IR[vlproxy-before,$sc]}" 'BEGIN {printf " %.2f |", a/b}'
    echo
  done
  echo
  echo "search-miss and search-hit on the bare proxy and on \`vlproxy-nocache\` are pass-throughs of a \`_search\`; on \`vlproxy\` (default configuration) every search-miss request is a result-cache miss and every search-hit request after the first a hit."
  PROFILED=(vlproxy); [ -n "${INS_COMPARE_BIN:-}" ] && PROFILED+=(vlproxy-before)
  for t in "${PROFILED[@]}"; do
  for sc in "${SCENARIOS[@]}"; do
    echo
    echo "Top $TOP functions of \`$t\` (default configuration) in $sc, self instructions per request (functions inlined into a caller count as the caller):"
    echo
    echo '```'
    callgrind_annotate --inclusive=no --auto=no "$TMP/final.$t.$sc" 2>/dev/null \
      | awk -v n="${IR[$t,$sc]}" -v tot="$(total_ir "$TMP/final.$t.$sc")" -v top="$TOP" '
          /PROGRAM TOTALS|file:function/ || !/^ *[0-9,]+ / {next}
          shown < top {
            ir = $1; gsub(",", "", ir); f = $0; sub(/^ *[0-9,]+ +(\([ 0-9.]+%\) +)?/, "", f)
            sub(/^[^:]*:/, "", f); sub(/ \[[^]]*\]$/, "", f)
            printf "%8.0f  %s\n", ir * n / tot, f; shown++ }'
    echo '```'
  done
  done
  echo
  echo "Command: \`bash bench/scripts/instructions.sh\` (valgrind and wrk from Debian; INS_COMPARE_BIN=another vlproxy build adds a before/after column)."
} >"$TMP/section.md"
if [ -n "$OUT" ]; then
  "$VB" section -out "$OUT" -name instructions -file "$TMP/section.md"
  echo "wrote the instructions section of $OUT" >&2
else
  cat "$TMP/section.md"
fi
