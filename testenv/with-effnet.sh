#!/usr/bin/env bash
# Runs a command with the local image model server up (testenv/effnet: EfficientNet-Lite0 +
# RapidOCR) and VLPROXY_TEST_EFFNET_URL pointing at it, then stops the server. Chains with
# with-opensearch.sh:
#
#   bash testenv/with-effnet.sh bash testenv/with-opensearch.sh go test ./...
#
# With VLPROXY_TEST_EFFNET_URL already set it just runs the command. The first run installs the
# server's venv under .cache/effnet (pinned PyPI versions, ~20 s); later runs skip the install.
# The server also stops if this script is killed: it holds a pipe from us and exits at its EOF.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ -n "${VLPROXY_TEST_EFFNET_URL:-}" ]; then
	exec "$@"
fi
tmp=$(mktemp -d)
(cd "$root" && go build -o "$tmp/effnet" ./testenv/cmd/effnet)
coproc EFFNET { exec "$tmp/effnet" -dir "$root/testenv/effnet" -port "${EFFNET_PORT:-0}" \
	-server-args "${EFFNET_SERVER_ARGS:-}" -exit-on-stdin-eof; }
effnet_pid=$EFFNET_PID
stop() {
	exec {EFFNET[1]}>&- 2>/dev/null || true
	wait "$effnet_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap stop EXIT
if ! read -r -u "${EFFNET[0]}" url; then
	echo "with-effnet: the model server did not start" >&2
	exit 1
fi
export VLPROXY_TEST_EFFNET_URL=$url
echo "with-effnet: VLPROXY_TEST_EFFNET_URL=$url" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
