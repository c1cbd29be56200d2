#!/usr/bin/env bash
# make bench: every benchmark section of BENCHMARKS.md, one script per section, each replacing only
# its own <!-- bench:NAME --> block. Other sections' scripts can be added to SCRIPTS.
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRIPTS=(passthrough.sh passthrough-pinned.sh instructions.sh cache.sh rewrite.sh bulk.sh relevance.sh relevance-vector.sh)
for extra in bench/scripts/section-*.sh; do [ -e "$extra" ] && SCRIPTS+=("$(basename "$extra")"); done
# BENCH_SECTIONS="passthrough.sh cache.sh" runs only those scripts (names as in SCRIPTS), e.g. the
# performance sections again after a change, without the half hour of relevance runs.
if [ -n "${BENCH_SECTIONS:-}" ]; then
  read -ra SCRIPTS <<<"$BENCH_SECTIONS"
  for s in "${SCRIPTS[@]}"; do [ -f "bench/scripts/$s" ] || { echo "BENCH_SECTIONS: no bench/scripts/$s" >&2; exit 2; }; done
fi
start=$(date +%s)
failed=()
for s in "${SCRIPTS[@]}"; do
  echo "== bench/scripts/$s" >&2
  t0=$(date +%s)
  if bash "bench/scripts/$s"; then
    echo "== $s done in $(( $(date +%s) - t0 ))s" >&2
  else
    echo "== $s FAILED" >&2
    failed+=("$s")
  fi
done
echo "make bench finished in $(( $(date +%s) - start ))s" >&2
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
