#!/usr/bin/env bash
# Runs a command with VLPROXY_TEST_ES_URL pointing at one OpenSearch node started for it, so
# every test package of a `make test` run shares a single node. When VLPROXY_TEST_ES_URL is
# already set (an external Elasticsearch/OpenSearch), the command runs against that instead.
#
#   bash testenv/with-node.sh go test ./...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${VLPROXY_TEST_ES_URL:-}" ]; then
	echo "with-node: using external node $VLPROXY_TEST_ES_URL"
	exec "$@"
fi
dir=$(mktemp -d)
go build -o "$dir/opensearch" ./testenv/cmd/opensearch
# The node stops on SIGTERM, and also when this script dies and its stdin pipe closes.
exec 3> >("$dir/opensearch" -port 0 -urlfile "$dir/url" -log "$dir/node.log" -exit-on-stdin-eof >"$dir/stdout" 2>"$dir/stderr")
node_pid=$!
cleanup() {
	exec 3>&-
	kill "$node_pid" 2>/dev/null || true
	for _ in $(seq 1 60); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.5; done
	rm -rf "$dir"
}
trap cleanup EXIT
t0=$(date +%s)
until [ -s "$dir/url" ]; do
	if ! kill -0 "$node_pid" 2>/dev/null; then
		echo "with-node: OpenSearch did not start:" >&2
		cat "$dir/stderr" >&2
		tail -n 50 "$dir/node.log" >&2 2>/dev/null || true
		exit 1
	fi
	if [ $(($(date +%s) - t0)) -gt 300 ]; then
		echo "with-node: OpenSearch not up after 300s" >&2
		tail -n 50 "$dir/node.log" >&2 2>/dev/null || true
		exit 1
	fi
	sleep 0.5
done
VLPROXY_TEST_ES_URL=$(cat "$dir/url")
export VLPROXY_TEST_ES_URL
echo "with-node: OpenSearch up at $VLPROXY_TEST_ES_URL after $(($(date +%s) - t0))s"
set +e
"$@"
rc=$?
set -e
exit $rc
