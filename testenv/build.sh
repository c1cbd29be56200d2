#!/usr/bin/env bash
# Builds the embedded OpenSearch launcher (testenv/opensearch) so that testenv.Start can run it.
# Idempotent: installs Java 17 / Maven only when missing, and runs Maven only when the pom or the
# launcher source changed since the last successful build (stamp file in target/). Downloads go to
# ~/.m2, so a rebuild after `rm -rf target` needs no network.
#
#   bash testenv/build.sh           # build if needed
#   FORCE=1 bash testenv/build.sh   # rebuild anyway
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
mod="$here/opensearch"
t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

java17() {
	local j
	for j in /usr/lib/jvm/java-17-openjdk-*/bin/java; do
		[ -x "$j" ] && { echo "$j"; return 0; }
	done
	if command -v java >/dev/null && java -version 2>&1 | grep -q 'version "17'; then
		command -v java
		return 0
	fi
	return 1
}

if ! java17 >/dev/null || ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
	echo "testenv: installing openjdk-17-jdk-headless and maven"
	ti=$(date +%s.%N)
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
	echo "testenv: apt-get took $(elapsed "$ti")"
fi
java_bin=$(java17) || { echo "testenv: no Java 17 after install" >&2; exit 1; }
export JAVA_HOME
JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java_bin")")")

# The stamp is keyed on everything that shapes target/: the pom, the launcher source, the JVM
# flags (the CDS archive is dumped with them) and this script.
key=$(cat "$mod/pom.xml" $(find "$mod/src" "$mod/jvm" -type f | sort) "$here/build.sh" | sha256sum | cut -c1-16)
stamp="$mod/target/.built-$key"
# Several shells (make targets, parallel test runs) may call this at once: one builds, the
# others wait for it and then find the stamp.
exec 9>"$mod/.build.lock"
flock 9
if [ -f "$stamp" ] && [ -z "${FORCE:-}" ]; then
	echo "testenv: launcher up to date (target/.built-$key), $(elapsed "$t0")"
	exit 0
fi

tm=$(date +%s.%N)
rm -rf "$mod/target"
# -o (offline) first: with a warm ~/.m2 it skips every remote check; fall back to online.
if ! mvn -B -q -o -f "$mod/pom.xml" package >/dev/null 2>&1; then
	mvn -B -q -f "$mod/pom.xml" package
fi
echo "testenv: mvn package took $(elapsed "$tm"); $(ls "$mod/target/lib" | wc -l) jars in lib, $(ls "$mod/target/knn" 2>/dev/null | wc -l) in knn"

# AppCDS archive for the test profile: start one node, let it exit, keep the loaded classes.
# It cuts start-up CPU by about a third. Optional: a failure only costs that speed. The JVM
# (17) keeps the classpath as given and checks it entry by entry at use, so it must be the
# absolute, symlink-free form that testenv (Go) passes.
tc=$(date +%s.%N)
cdshome=$(mktemp -d)
if (cd "$mod" && "$java_bin" @jvm/common.options @jvm/test.options -XX:ArchiveClassesAtExit=target/cds-test.jsa \
	-cp "$mod/target/launcher.jar:$mod/target/lib/*:$mod/target/knn/*" io.vlproxy.testenv.EmbeddedOpenSearch \
	--home "$cdshome" --exit-after-start </dev/null >"$mod/target/cds-dump.log" 2>&1) && [ -s "$mod/target/cds-test.jsa" ]; then
	echo "testenv: AppCDS archive dumped in $(elapsed "$tc") (target/cds-test.jsa)"
else
	rm -f "$mod/target/cds-test.jsa"
	echo "testenv: warning: no AppCDS archive (see $mod/target/cds-dump.log); nodes start slower" >&2
fi
rm -rf "$cdshome"
touch "$stamp"
echo "testenv: built in $(elapsed "$t0")"
