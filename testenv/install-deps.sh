#!/usr/bin/env bash
# Installs the Debian tools the tests run for real, when they are missing:
#   redis-server  the shared L2 tier and write generations of fleet mode (testenv/with-redis.sh)
#   promtool      lints a live /metrics (package prometheus; it brings a server we never start)
#   ffmpeg        ffprobe/ffmpeg sample product videos into frames (video/, enrich -video-field)
#   podman, runc  build and run the FROM-scratch image (docker/podman-smoke.sh; runc because
#                 crun refuses hosts with hybrid cgroups)
# Idempotent and quiet when everything is there; called by `make test`.
set -euo pipefail
want=()
command -v redis-server >/dev/null || want+=(redis-server)
command -v promtool >/dev/null || want+=(prometheus)
{ command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; } || want+=(ffmpeg)
if [ "${VLPROXY_SKIP_PODMAN:-}" = "" ]; then
	command -v podman >/dev/null || want+=(podman)
	command -v runc >/dev/null || want+=(runc)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: need ${want[*]} (run as root, or install them yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps prometheus from pulling its exporters and web assets.
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# Debian's packages enable their own services; the tests start their own instances on free ports.
for svc in redis-server prometheus; do
	if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
