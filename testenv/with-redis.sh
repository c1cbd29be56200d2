#!/usr/bin/env bash
# Runs a command with one redis-server up on a free loopback port and VLPROXY_TEST_REDIS_URL
# pointing at it, then stops the server. Chains with with-opensearch.sh:
#
#   bash testenv/with-redis.sh bash testenv/with-opensearch.sh go test ./integration/
#
# With VLPROXY_TEST_REDIS_URL already set it just runs the command. Tests that kill Redis
# (the fleet tests) start their own private server instead.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ -n "${VLPROXY_TEST_REDIS_URL:-}" ]; then
	exec "$@"
fi
bash "$root/testenv/install-deps.sh"
tmp=$(mktemp -d)
(cd "$root" && go build -o "$tmp/redis" ./testenv/cmd/redis)
coproc REDIS { exec "$tmp/redis"; }
redis_pid=$REDIS_PID
stop() {
	exec {REDIS[1]}>&- 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap stop EXIT
if ! read -r -u "${REDIS[0]}" url; then
	echo "with-redis: redis-server did not start" >&2
	exit 1
fi
export VLPROXY_TEST_REDIS_URL=$url
echo "with-redis: VLPROXY_TEST_REDIS_URL=$url" >&2
set +e
"$@"
rc=$?
set -e
exit $rc
