#!/usr/bin/env bash
# Relevance on the fashion catalogue (../shared/data/fashion): BM25 baseline on a real OpenSearch
# node, the same queries through vlproxy (must score identically: pass-through), and, when
# REL_VARIANTS is set, vlproxy variants (header sets) with the model simulated by
# `vlbench fake-model` (model/modeltest). Writes the "relevance" section of BENCHMARKS.md.
# Env: REL_TEXT (50) / REL_IMAGE (50) queries, REL_K (10), FASHION_DIR,
#   REL_VARIANTS  (default when vlproxy has -model-url: bm25 / rewrite / rewrite+rerank; "none": off) e.g. "bm25:X-VLProxy-Rewrite=off;rewrite:X-VLProxy-Rewrite=on;rewrite+rerank:X-VLProxy-Rewrite=on,X-VLProxy-Rerank=on"
#   REL_VLPROXY_ARGS extra vlproxy flags; $MODEL_URL is the simulator's base URL, e.g. '-model-url $MODEL_URL'
#   REL_MODEL_ARGS extra fake-model flags (default: -latency 5ms)
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
NT=${REL_TEXT:-50}; NI=${REL_IMAGE:-50}; K=${REL_K:-10}
OUT=${REL_OUT:-BENCHMARKS.md}
FASHION=${FASHION_DIR:-$(cd .. && pwd)/shared/data/fashion}
if [ ! -f "$FASHION/styles.csv" ]; then echo "relevance: no fashion catalogue at $FASHION (set FASHION_DIR)" >&2; exit 1; fi

TMP=$(mktemp -d /tmp/vlbench-rel.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  exec 7>&- 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

$GO build -o "$TMP/vlbench" ./cmd/vlbench
$GO build -o "$TMP/opensearch" ./testenv/cmd/opensearch
VB=$TMP/vlbench

# OpenSearch stops on SIGTERM, and also when the pipe on its stdin closes (if this script dies).
mkfifo "$TMP/os.in"
"$TMP/opensearch" -port 0 -profile bench -urlfile "$TMP/os.url" -exit-on-stdin-eof <"$TMP/os.in" >"$TMP/os.log" 2>&1 &
OS_PID=$!; PIDS+=("$OS_PID")
exec 7>"$TMP/os.in"
for _ in $(seq 300); do [ -s "$TMP/os.url" ] && break; kill -0 "$OS_PID" 2>/dev/null || { cat "$TMP/os.log" >&2; exit 1; }; sleep 1; done
OS=$(head -1 "$TMP/os.url")

"$VB" index -fashion -fashion-dir "$FASHION" -url "$OS" -index products -recreate | tee "$TMP/index.txt"
"$VB" fashion-queries -fashion-dir "$FASHION" -out "$TMP/q" -text "$NT" -image "$NI"
cat >"$TMP/bm25.json" <<'JSON'
{"size":{{size}},"query":{"multi_match":{"query":{{text}},"fields":["title","articleType","baseColour","gender"]}},"sort":[{"_score":"desc"},{"id":"desc"}],"track_scores":true}
JSON
EVAL=(-queries "$TMP/q/queries-text.ndjson" -qrels "$TMP/q/qrels-text.txt" -k "$K" -all-judged)
"$VB" eval -url "$OS" "${EVAL[@]}" -variant bm25 -template "$TMP/bm25.json" -json "$TMP/bm25.json.out" -markdown "$TMP/bm25.md"

HAVE_PROXY=0
if $GO build -o "$TMP/vlproxy" ./cmd/vlproxy 2>"$TMP/vlproxy-build.log"; then
  HAVE_PROXY=1
  # Default comparison (issue: BM25 vs rewrite vs rewrite+rerank with the simulated model), when
  # this vlproxy has model flags; REL_VARIANTS=none turns it off.
  if [ -z "${REL_VARIANTS:-}" ] && "$TMP/vlproxy" -help 2>&1 | grep -q -- '-model-url'; then
    REL_VARIANTS="bm25:X-VLProxy-Rewrite=off,X-VLProxy-Rerank=off;rewrite:X-VLProxy-Rewrite=on,X-VLProxy-Rerank=off;rewrite+rerank:X-VLProxy-Rewrite=on,X-VLProxy-Rerank=on"
    REL_VLPROXY_ARGS=${REL_VLPROXY_ARGS:-'-model-url $MODEL_URL -rerank-url $MODEL_URL -log-level warn'}
  fi
  [ "${REL_VARIANTS:-}" = none ] && REL_VARIANTS=
  MODEL_URL=
  if [ -n "${REL_VARIANTS:-}" ]; then
    MP=$("$VB" freeport)
    "$VB" fake-model -listen "127.0.0.1:$MP" ${REL_MODEL_ARGS:--latency 5ms} >"$TMP/model.log" 2>&1 &
    PIDS+=("$!")
    "$VB" wait -addr "127.0.0.1:$MP"
    MODEL_URL="http://127.0.0.1:$MP"
  fi
  VP=$("$VB" freeport)
  # shellcheck disable=SC2086
  "$TMP/vlproxy" -listen "127.0.0.1:$VP" -upstream "$OS" $(MODEL_URL=$MODEL_URL eval echo "${REL_VLPROXY_ARGS:-}") >"$TMP/vlproxy.log" 2>&1 &
  PIDS+=("$!")
  "$VB" wait -addr "127.0.0.1:$VP"
  "$VB" eval -url "http://127.0.0.1:$VP" "${EVAL[@]}" -variant bm25-through-vlproxy -template "$TMP/bm25.json" -json "$TMP/bm25-proxy.json.out" -markdown "$TMP/bm25-proxy.md"
  # Same ranked ids for every query, directly and through vlproxy?
  if diff <(grep -o '"id": "[^"]*"' "$TMP/bm25.json.out") <(grep -o '"id": "[^"]*"' "$TMP/bm25-proxy.json.out") >/dev/null; then
    SAME="Every query returned the same ranked documents directly and through vlproxy."
  else
    SAME="**The ranked documents differ between the direct and the vlproxy runs.**"
  fi
  if [ -n "${REL_VARIANTS:-}" ]; then
    VARGS=()
    IFS=';' read -ra VS <<<"$REL_VARIANTS"
    for v in "${VS[@]}"; do VARGS+=(-variant "$v"); done
    mkdir -p bench/results
    for set in text image; do
      "$VB" eval -url "http://127.0.0.1:$VP" -queries "$TMP/q/queries-$set.ndjson" -qrels "$TMP/q/qrels-$set.txt" -k "$K" -all-judged \
        "${VARGS[@]}" -note "Model: SIMULATED by vlbench fake-model (model/modeltest), not Qwen3-VL: these figures test the plumbing, not model quality." \
        -markdown "$TMP/variants-$set.md" -svg "bench/results/relevance-$set.svg"
    done
  fi
fi

{
  echo "## Relevance on the fashion catalogue"
  echo
  echo "Generated by \`bash bench/scripts/relevance.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Catalogue: $(grep -o 'indexed [0-9]* documents' "$TMP/index.txt" | sed 's/indexed //') from ../shared/data/fashion into OpenSearch $(curl -s "$OS" 2>/dev/null | grep -o '"number" *: *"[^"]*"' | head -1 | sed 's/.*: *//;s/"//g') (test node from testenv). Queries and graded judgments are derived from product attributes as described in the catalogue's README ($NT text queries \"{gender} {baseColour} {articleType}\", gains 3/2/1; $NI image queries, gains 2/1, the query product excluded). Every product is judged (-all-judged)."
  echo
  echo "### BM25 baseline (multi_match on title, articleType, baseColour, gender; ties by id descending as trec_eval does), directly against OpenSearch"
  echo
  cat "$TMP/bm25.md"
  if [ "$HAVE_PROXY" = 1 ]; then
    echo
    echo "### The same queries through vlproxy (pass-through: must equal the baseline)"
    echo
    cat "$TMP/bm25-proxy.md"
    echo
    echo "$SAME"
    for set in text image; do
      if [ -f "$TMP/variants-$set.md" ]; then
        echo
        echo "### Variants through vlproxy, $set queries (model SIMULATED)"
        echo
        cat "$TMP/variants-$set.md"
        echo
        echo "![mean relevance, $set queries](bench/results/relevance-$set.svg)"
      fi
    done
  else
    echo
    echo "vlproxy did not build when this section was generated, so only the baseline is shown."
  fi
  echo
  if [ -n "${REL_VARIANTS:-}" ]; then
    echo
    echo "Variants are header sets on the same vlproxy (\`$REL_VARIANTS\`); vlproxy ran with \`$(MODEL_URL=MODEL_URL eval echo "${REL_VLPROXY_ARGS:-}")\` and the body \`{\"query\":{\"multimodal\":{\"text\"|\"image\":…}}}\`; the model is \`vlbench fake-model ${REL_MODEL_ARGS:--latency 5ms}\`. With rewrite off, an image-only clause has no text to search, hence the zeros."
  fi
  echo
  echo "Commands: \`vlbench index -fashion -url OS -recreate\`, \`vlbench fashion-queries -out DIR -text $NT -image $NI\`, \`vlbench eval -url URL -queries DIR/queries-text.ndjson -qrels DIR/qrels-text.txt -k $K -all-judged -template bm25.json [-variant name:Header=Value …]\`."
} >"$TMP/section.md"
"$VB" section -out "$OUT" -name relevance -file "$TMP/section.md"
echo "wrote the relevance section of $OUT" >&2
