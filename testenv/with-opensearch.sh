#!/usr/bin/env bash
# Runs a command with one OpenSearch node up and VLPROXY_TEST_ES_URL pointing at it, then stops
# the node: the way for `make test` to share one node between all test packages.
#
#   bash testenv/with-opensearch.sh go test ./...
#   OPENSEARCH_PROFILE=bench bash testenv/with-opensearch.sh go test -run '^$' -bench . ./bench/
#
# With VLPROXY_TEST_ES_URL already set it just runs the command against that cluster.
# The node also stops if this script is killed: the node command holds a pipe from us and exits
# at its end of file.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ -n "${VLPROXY_TEST_ES_URL:-}" ]; then
	exec "$@"
fi
bash "$root/testenv/build.sh"
tmp=$(mktemp -d)
(cd "$root" && go build -o "$tmp/opensearch" ./testenv/cmd/opensearch)
coproc NODE { exec "$tmp/opensearch" -dir "$root/testenv/opensearch" -port "${OPENSEARCH_PORT:-0}" \
	-profile "${OPENSEARCH_PROFILE:-test}" -exit-on-stdin-eof; }
node_pid=$NODE_PID
stop() {
	exec {NODE[1]}>&- 2>/dev/null || true
	wait "$node_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap stop EXIT
# The node command prints its URL on stdout once the cluster is yellow (its log goes to stderr).
if ! read -r -u "${NODE[0]}" url; then
	echo "with-opensearch: the node did not start" >&2
	exit 1
fi
export VLPROXY_TEST_ES_URL=$url
echo "with-opensearch: VLPROXY_TEST_ES_URL=$url" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
