#!/usr/bin/env bash
# Photo search measured with a real image model: the fashion catalogue's 2,000 products with
# photos (../shared/data/fashion) on a real OpenSearch node, enriched by the local
# EfficientNet-Lite0 server (testenv/effnet) with image vectors (knn_vector, Lucene HNSW) and
# keywords; image queries through vlproxy as keywords, vector, hybrid and hybrid+rerank (the
# reranker SIMULATED by vlbench fake-model); text queries as keywords only (the model has no
# text tower); plus the exact-cosine reference outside the engine, which the vector variant must
# come within 0.02 nDCG@10 of. Writes the "relevance-vector" section of BENCHMARKS.md.
# Env: REL_IMAGE (100) / REL_TEXT (50) queries, REL_K (10), REL_RECALL (100), FASHION_DIR,
#   VLPROXY_TEST_EFFNET_URL (a running effnet server; else one is started for the run).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${VLPROXY_TEST_EFFNET_URL:-}" ]; then
  exec bash testenv/with-effnet.sh bash "$0" "$@"
fi
GO=${GO:-go}
NI=${REL_IMAGE:-100}; NT=${REL_TEXT:-50}; K=${REL_K:-10}; R=${REL_RECALL:-100}
OUT=${REL_OUT:-BENCHMARKS.md}
FASHION=${FASHION_DIR:-$(cd .. && pwd)/shared/data/fashion}
EFFNET=$VLPROXY_TEST_EFFNET_URL
if [ ! -f "$FASHION/styles.csv" ]; then echo "relevance-vector: no fashion catalogue at $FASHION (set FASHION_DIR)" >&2; exit 1; fi

TMP=$(mktemp -d /tmp/vlbench-relvec.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  exec 7>&- 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
START=$(date +%s)

$GO build -o "$TMP/vlbench" ./cmd/vlbench
$GO build -o "$TMP/vlproxy" ./cmd/vlproxy
$GO build -o "$TMP/opensearch" ./testenv/cmd/opensearch
VB=$TMP/vlbench

mkfifo "$TMP/os.in"
"$TMP/opensearch" -port 0 -profile bench -urlfile "$TMP/os.url" -exit-on-stdin-eof <"$TMP/os.in" >"$TMP/os.log" 2>&1 &
OS_PID=$!; PIDS+=("$OS_PID")
exec 7>"$TMP/os.in"
for _ in $(seq 300); do [ -s "$TMP/os.url" ] && break; kill -0 "$OS_PID" 2>/dev/null || { cat "$TMP/os.log" >&2; exit 1; }; sleep 1; done
OS=$(head -1 "$TMP/os.url")
IDX=fashion

"$VB" index -fashion -fashion-dir "$FASHION" -photos-only -knn -url "$OS" -index "$IDX" -recreate | tee "$TMP/index.txt"
# The photos' keywords (vl_keywords) and vectors (image_vec) from the real model.
ENRICH_T0=$SECONDS
"$VB" enrich -url "$OS" -index "$IDX" -image-dir "$FASHION" -model-url "$EFFNET" -model-api openai \
  -embed-url "$EFFNET" -vector-field image_vec -concurrency 2 2>"$TMP/enrich.log" | tee "$TMP/enrich.txt"
ENRICH_S=$((SECONDS - ENRICH_T0))
curl -s -XPOST "$OS/$IDX/_refresh" >/dev/null
"$VB" fashion-queries -fashion-dir "$FASHION" -photos-only -out "$TMP/q" -text "$NT" -image "$NI"

cat >"$TMP/vlproxy.yaml" <<YAML
rewrite:
  profiles:
    - index: "$IDX"
      fields: ["title", "vl_keywords", "articleType", "baseColour"]
      vector: {field: image_vec, dims: 1280}
rerank:
  indices: []
  window_size: 50
  scorer: api
  fields: {text: ["title"]}
YAML
MP=$("$VB" freeport)
"$VB" fake-model -listen "127.0.0.1:$MP" -latency 2ms >"$TMP/model.log" 2>&1 &
PIDS+=("$!")
"$VB" wait -addr "127.0.0.1:$MP"
VP=$("$VB" freeport)
VARGS_PROXY="-config $TMP/vlproxy.yaml -model-url $EFFNET -model-api openai -embed-url $EFFNET -rerank-url http://127.0.0.1:$MP -result-cache-size 0 -log-level warn"
# shellcheck disable=SC2086
"$TMP/vlproxy" -listen "127.0.0.1:$VP" -upstream "$OS" $VARGS_PROXY >"$TMP/vlproxy.log" 2>&1 &
PIDS+=("$!")
"$VB" wait -addr "127.0.0.1:$VP"
PROXY=http://127.0.0.1:$VP

NOTE="Model: EfficientNet-Lite0 (testenv/effnet, real, CPU) for keywords and vectors; the reranker of hybrid+rerank is SIMULATED (vlbench fake-model rerank API), so that row tests the plumbing, not model quality."
"$VB" eval -url "$PROXY" -index "$IDX" -queries "$TMP/q/queries-image.ndjson" -qrels "$TMP/q/qrels-image.txt" -k "$K" -recall-at "$R" -all-judged \
  -variant "keywords:X-VLProxy-Retrieval=keywords,X-VLProxy-Rerank=off" \
  -variant "vector:X-VLProxy-Retrieval=vector,X-VLProxy-Rerank=off" \
  -variant "hybrid:X-VLProxy-Retrieval=hybrid,X-VLProxy-Rerank=off" \
  -variant "hybrid+rerank (SIMULATED):X-VLProxy-Retrieval=hybrid,X-VLProxy-Rerank=on" \
  -note "$NOTE" -json "$TMP/image.json" -markdown "$TMP/image.md"
"$VB" eval -url "$PROXY" -index "$IDX" -queries "$TMP/q/queries-text.ndjson" -qrels "$TMP/q/qrels-text.txt" -k "$K" -recall-at "$R" -all-judged \
  -variant "keywords:X-VLProxy-Retrieval=keywords,X-VLProxy-Rerank=off" \
  -markdown "$TMP/text.md"
"$VB" exact-knn -url "$OS" -index "$IDX" -field image_vec -queries "$TMP/q/queries-image.ndjson" -qrels "$TMP/q/qrels-image.txt" \
  -k "$K" -recall-at "$R" -markdown "$TMP/exact.md" -compare "$TMP/image.json" -variant vector -max-gap 0.02 | tee "$TMP/gap.txt" || GAP_FAILED=1
# The model's CPU time per photo, as the server measures it (metrics.cpu_ms of each answer).
CPU=$(for id in $(head -50 "$FASHION/subset_ids.txt"); do
  f="$FASHION/images/$id.jpg"; b=$(base64 -w0 "$f")
  curl -s "$EFFNET/v1/embeddings" -H 'Content-Type: application/json' -d "{\"input\":[\"data:image/jpeg;base64,$b\"]}" | grep -o '"cpu_ms":[0-9.]*' | head -1 | cut -d: -f2
done | sort -n | awk '{a[NR]=$1} END {if (NR) printf "p50 %.1f ms, p90 %.1f ms over %d photos", a[int(NR*0.5)+1], a[int(NR*0.9)+1], NR; else print "not reported by the server"}')

{
  echo "## Relevance of photo search with a real image model"
  echo
  echo "Generated by \`bash bench/scripts/relevance-vector.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(( $(date +%s) - START )) s. Catalogue: $(grep -o 'indexed [0-9]* documents' "$TMP/index.txt" | sed 's/indexed //') (the products of ../shared/data/fashion with a photo) in OpenSearch $(curl -s "$OS" | grep -o '"number" *: *"[^"]*"' | head -1 | sed 's/.*: *//;s/"//g'), enriched in ${ENRICH_S} s by \`vlbench enrich\` with EfficientNet-Lite0 (testenv/effnet): 1280-d image vectors in \`image_vec\` (knn_vector, Lucene HNSW, cosine) and keywords in \`vl_keywords\` ($(tail -1 "$TMP/enrich.txt")). $NI image queries (a product's photo, the product excluded; gain 2 same articleType and colour, 1 same articleType), every product judged. Variants are request headers on one vlproxy (\`X-VLProxy-Retrieval\`, \`X-VLProxy-Rerank\`); hybrid fuses by RRF (rank_constant 60) over one \`_msearch\`."
  echo
  echo "### Image queries"
  echo
  cat "$TMP/image.md"
  echo
  echo "### Exact cosine over the stored vectors (outside the engine)"
  echo
  cat "$TMP/exact.md"
  echo
  echo "Check: $(cat "$TMP/gap.txt")."
  echo
  echo "### Text queries"
  echo
  echo "EfficientNet-Lite0 is an image-only model (no text tower): text queries can only run as keywords, and its chat route cannot turn a text into keywords, so the rewrite falls back to a plain multi_match of the text over the profile's fields (including the photo keywords in vl_keywords). Vector and hybrid text variants are not possible with this model."
  echo
  cat "$TMP/text.md"
  echo
  echo "Model CPU time per photo (EfficientNet-Lite0 embedding, onnxruntime on this machine's CPU, as the server reports it): $CPU."
  echo
  echo "vlproxy ran with \`$VARGS_PROXY\` (config: profile with \`vector: {field: image_vec, dims: 1280}\`). Commands: \`vlbench index -fashion -photos-only -knn\`, \`vlbench enrich -model-url EFFNET -embed-url EFFNET -vector-field image_vec\`, \`vlbench fashion-queries -photos-only -image $NI -text $NT\`, \`vlbench eval -k $K -recall-at $R -all-judged -variant …\`, \`vlbench exact-knn -field image_vec -compare image.json -variant vector -max-gap 0.02\`."
} >"$TMP/section.md"
"$VB" section -out "$OUT" -name relevance-vector -file "$TMP/section.md"
echo "wrote the relevance-vector section of $OUT" >&2
[ -z "${GAP_FAILED:-}" ]
