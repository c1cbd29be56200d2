#!/usr/bin/env bash
# Measures node start-up time to yellow (3 starts per profile) and the JVM's RSS, idle and after
# the smoke tests ran against it. Also prints the load average: wall times on a busy machine
# mean little without it. Run from the repository root after testenv/build.sh:
#   bash testenv/measure.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/opensearch
go build -o "$bin" ./testenv/cmd/opensearch
for profile in test bench; do
	for i in 1 2 3; do
		url=$tmp/url-$profile-$i
		coproc NODE { exec "$bin" -port 0 -profile "$profile" -urlfile "$url" -exit-on-stdin-eof 2>&1; }
		line=""
		while read -r -u "${NODE[0]}" l; do
			case "$l" in *"OpenSearch is up"*) line=$l; break ;; *ERROR*) echo "$l"; exit 1 ;; esac
		done
		pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' <<<"$line")
		startup=$(sed -n 's/.* startup=\([^ ]*\).*/\1/p' <<<"$line")
		idle=$(($(ps -o rss= -p "$pid") / 1024))
		# CPU seconds the JVM used to get there: steadier than wall time on a shared machine.
		cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1fs", ($14 + $15) / hz }' "/proc/$pid/stat")
		after="-"
		if [ "$i" = 1 ]; then
			VLPROXY_TEST_ES_URL=$(cat "$url") go test -count=1 -run 'Test(Version|Analyzers|NgramIndex|Painless|UpdateAnd|KNN)' ./testenv/ >/dev/null
			after=$(($(ps -o rss= -p "$pid") / 1024))
		fi
		echo "profile=$profile run=$i startup_to_yellow=$startup jvm_cpu=$cpu rss_idle_mib=$idle rss_after_smoke_mib=$after"
		exec {NODE[1]}>&-
		wait "$NODE_PID" || true
	done
done
uptime
