#!/usr/bin/env bash
# Installs the local image model server's Python environment (testenv/effnet) into a venv at
# $VLPROXY_EFFNET_VENV, default .cache/effnet/venv under the repository root (gitignored), with
# the pinned versions of requirements.txt from PyPI. A warm run is a no-op: the venv keeps a stamp
# of requirements.txt and the Python version, and the install is skipped while both match.
# Prints the venv's python path on stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
venv=${VLPROXY_EFFNET_VENV:-$root/.cache/effnet/venv}
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1; then
	echo "effnet install: $python not found; installing python3 with apt" >&2
	apt-get update -q >&2 && apt-get install -y -q python3 python3-venv >&2
	python=python3
fi
want=$( (sha256sum "$here/requirements.txt" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
stamp="$venv/.vlproxy-requirements"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$venv/bin/python"
	exit 0
fi

if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
	echo "effnet install: the venv module is missing; installing python3-venv with apt" >&2
	apt-get update -q >&2 && apt-get install -y -q python3-venv >&2
fi
start=$(date +%s)
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$here/requirements.txt" >&2
echo "$want" >"$stamp"
echo "effnet install: venv ready in $(($(date +%s) - start)) s at $venv" >&2
echo "$venv/bin/python"
