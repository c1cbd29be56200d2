#!/usr/bin/env bash
# Installs Debian's ffmpeg (ffmpeg + ffprobe) for the video package and the video-moments
# integration test, a no-op when both are already there. `make test` runs it and then requires
# the tools (REQUIRE_FFMPEG=1), so a fresh machine runs the tests instead of skipping them.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
	exit 0
fi
echo "testenv: installing ffmpeg (apt-get)"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
ffmpeg -hide_banner -version | head -n 1
