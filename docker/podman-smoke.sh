#!/usr/bin/env bash
# Builds the FROM-scratch image (docker/Dockerfile.scratch) with Debian's podman, offline (scratch
# needs no pull), runs it against an OpenSearch node and checks /_vlproxy/health and a
# pass-through request through the container.
#
#   bash testenv/with-opensearch.sh bash docker/podman-smoke.sh
#
# Needs VLPROXY_TEST_ES_URL, podman and runc (testenv/install-deps.sh). Everything podman stores
# goes to a private temporary root, removed at the end: the machine's image store is not touched.
#
# Two things this machine kind needs, both plain podman options:
#   --runtime runc   crun (Debian's default) refuses hosts with hybrid cgroups v1/v2
#   --ulimit ...     without CAP_SYS_RESOURCE no limit can be raised, and podman asks for more
#                    open files and processes than a container here may have; we ask for what the
#                    runtime already has.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
es=${VLPROXY_TEST_ES_URL:?set VLPROXY_TEST_ES_URL (run under testenv/with-opensearch.sh)}
for tool in podman runc curl; do
	command -v "$tool" >/dev/null || { echo "podman-smoke: $tool is not installed (testenv/install-deps.sh)" >&2; exit 2; }
done
tmp=$(mktemp -d)
name="vlproxy-smoke-$$"
p=(podman --root "$tmp/storage" --runroot "$tmp/run" --storage-driver vfs --runtime "$(command -v runc)"
	--cgroup-manager cgroupfs --events-backend none)
cleanup() {
	"${p[@]}" rm -f "$name" >/dev/null 2>&1 || true
	"${p[@]}" rmi -af >/dev/null 2>&1 || true
	rm -rf "$tmp" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$tmp/ctx"
(cd "$root" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags="-s -w" -o "$tmp/ctx/vlproxy" ./cmd/vlproxy)
"${p[@]}" build --quiet -f "$root/docker/Dockerfile.scratch" -t localhost/vlproxy:scratch "$tmp/ctx" >/dev/null
size=$("${p[@]}" image inspect localhost/vlproxy:scratch --format '{{.Size}}')

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
"${p[@]}" run -d --name "$name" --network host --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
	localhost/vlproxy:scratch -listen "127.0.0.1:$port" -upstream "$es" -log-level warn >/dev/null

health=""
for _ in $(seq 1 100); do
	if health=$(curl -fsS -m 2 "http://127.0.0.1:$port/_vlproxy/health" 2>/dev/null); then break; fi
	sleep 0.1
done
if [ -z "$health" ]; then
	echo "podman-smoke: the container did not answer /_vlproxy/health; its log:" >&2
	"${p[@]}" logs "$name" >&2 || true
	exit 1
fi
case "$health" in
*'"status":"green"'*) ;;
*) echo "podman-smoke: health is not green: $health" >&2; exit 1 ;;
esac
root_doc=$(curl -fsS -m 5 "http://127.0.0.1:$port/")
case "$root_doc" in
*'"cluster_name"'*) ;;
*) echo "podman-smoke: GET / through the container did not reach the cluster: $root_doc" >&2; exit 1 ;;
esac
user=$("${p[@]}" inspect "$name" --format '{{.Config.User}}')
echo "podman-smoke: ok: image localhost/vlproxy:scratch ($size bytes, user $user) healthy in front of $es"
