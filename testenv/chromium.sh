#!/usr/bin/env bash
# Installs Debian's chromium for the playground's browser test (integration/playground_test.go),
# a no-op when it is already there. `make test` runs it and then requires the browser
# (REQUIRE_BROWSER=1), so a fresh machine runs the test instead of skipping it.
set -euo pipefail
if [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1; then
	exit 0
fi
echo "testenv: installing chromium (apt-get)"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
/usr/lib/chromium/chromium --version || chromium --version
