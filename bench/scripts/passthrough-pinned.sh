#!/usr/bin/env bash
# The pinned pass-through run (section "passthrough-pinned" of BENCHMARKS.md): proxies on CPU 0,
# backend and wrk on CPU 1; see PT_PIN in passthrough.sh.
PT_PIN=1 exec bash "$(dirname "$0")/passthrough.sh" "$@"
