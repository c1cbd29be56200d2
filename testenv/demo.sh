#!/usr/bin/env bash
# `make demo`: OpenSearch on 127.0.0.1:9200 with the sample catalogue in index "products", the
# model simulator on 127.0.0.1:8000 (unless VLPROXY_MODEL_URL points at a real vLLM/SGLang/…
# server), and vlproxy on 127.0.0.1:8080. Prints curl commands, then runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=bin
run=$(mktemp -d)
pids=()
cleanup() {
	trap - EXIT INT TERM
	echo; echo "demo: stopping"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 9200 8080; do
	if port_busy "$p"; then echo "demo: port $p is in use; stop what listens there first" >&2; exit 1; fi
done

echo "demo: starting OpenSearch on 127.0.0.1:9200 (log $run/opensearch.log)"
"$bin/opensearch" -port 9200 -urlfile "$run/os.url" -log "$run/opensearch.log" >"$run/os.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
	[ -s "$run/os.url" ] && break
	kill -0 "${pids[0]}" 2>/dev/null || { cat "$run/os.out" >&2; exit 1; }
	sleep 0.5
done
[ -s "$run/os.url" ] || { echo "demo: OpenSearch did not come up" >&2; exit 1; }

echo "demo: loading the sample catalogue (testenv/demo/products.ndjson, with generated photos) into index products"
"$bin/democatalogue" -in testenv/demo/products.ndjson -out "$run/products.ndjson"
"$bin/vlbench" index -url http://127.0.0.1:9200 -index products -file "$run/products.ndjson" \
	-mappings testenv/demo/mapping.json -recreate

model_url=${VLPROXY_MODEL_URL:-}
if [ -z "$model_url" ]; then
	if port_busy 8000; then echo "demo: port 8000 is in use (set VLPROXY_MODEL_URL to use a real model)" >&2; exit 1; fi
	echo "demo: starting the model simulator on 127.0.0.1:8000 (rules testenv/demo/model-rules.yaml)"
	"$bin/vlbench" fake-model -listen 127.0.0.1:8000 -rules testenv/demo/model-rules.yaml >"$run/model.log" 2>&1 &
	pids+=($!)
	model_url=http://127.0.0.1:8000
fi

echo "demo: starting vlproxy on 127.0.0.1:8080 (log $run/vlproxy.log)"
"$bin/vlproxy" -listen 127.0.0.1:8080 -upstream http://127.0.0.1:9200 \
	-model-url "$model_url" -model-name "${VLPROXY_MODEL_NAME:-Qwen/Qwen3-VL-4B-Instruct}" \
	-config testenv/demo/vlproxy.yaml -rerank-scorer judge -log-level warn -ui >"$run/vlproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	curl -fs http://127.0.0.1:8080/_vlproxy/health >/dev/null 2>&1 && break
	sleep 0.1
done

img="data:image/jpeg;base64,$(base64 -w0 testenv/demo/red-dress.jpg)"
cat >"$run/image-query.json" <<JSON
{"query":{"multimodal":{"image":"$img"}},"size":3,"_source":["title","colour"],"ext":{"vlproxy":{"explain":true}}}
JSON

show() {
	echo
	echo "\$ $1"
	bash -c "$1" || true
	echo
}
cat <<'TXT'

vlproxy demo is up. Every ES API works through http://127.0.0.1:8080; these requests show what it adds.
TXT
show "curl -s 'http://127.0.0.1:8080/products/_search?size=2&filter_path=hits.hits._source.title' -H 'Content-Type: application/json' -d '{\"query\":{\"match\":{\"title\":\"dress\"}}}'"
show "curl -s -D- -o /dev/null http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -d '{\"query\":{\"multimodal\":{\"text\":\"适合夏季海边度假穿\"}},\"size\":3}' | grep -i '^x-vlproxy\|^server-timing'"
show "curl -s http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -d '{\"query\":{\"multimodal\":{\"text\":\"something warm for a winter hike\"}},\"size\":4,\"_source\":[\"title\"]}'"
show "curl -s http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -d @$run/image-query.json"
show "curl -s http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -H 'X-VLProxy-Rerank: off' -d '{\"query\":{\"multimodal\":{\"text\":\"red dress for summer\"}},\"size\":4,\"_source\":[\"title\"]}'"
show "curl -s -D- http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -H 'X-VLProxy-Rerank: on' -d '{\"query\":{\"multimodal\":{\"text\":\"red dress for summer\"}},\"size\":4,\"_source\":[\"title\"]}'"
show "curl -s -D- http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -H 'X-User-Id: alice' -d '{\"query\":{\"multimodal\":{\"text\":\"red dress for summer\"}},\"size\":2,\"_source\":[\"title\"]}' | grep -i '^x-vlproxy\|^{'"
show "curl -s -D- http://127.0.0.1:8080/products/_search -H 'Content-Type: application/json' -H 'X-VLProxy-Variant: judge' -d '{\"query\":{\"multimodal\":{\"text\":\"red dress for summer\"}},\"size\":2,\"_source\":[\"title\"]}' | grep -i '^x-vlproxy\|^{'"
show "curl -s http://127.0.0.1:8080/_vlproxy/health"
echo "The image query's body is in $run/image-query.json."
echo
echo "Playground: open http://127.0.0.1:8080/_vlproxy/ui/ in a browser on this machine and drop in"
echo "testenv/demo/red-dress.jpg (or any photo). Press Ctrl-C to stop OpenSearch, the simulator and vlproxy."
wait "${pids[0]}"
