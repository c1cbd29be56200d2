#!/usr/bin/env bash
# Instructions per op of Go benchmarks, under `valgrind --tool=callgrind`: each benchmark runs
# for N and N/2 iterations and the difference is divided by N/2, which takes out start-up and
# package init. Counts repeat whatever else the machine runs, so two builds compare in one run.
# Usage: gobench-instructions.sh [-before REV] PKG BENCH [BENCH…]   (env GOBENCH_N, default 40000)
# With -before, REV is built in a temporary worktree and measured beside the working tree.
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
before=
if [ "${1:-}" = -before ]; then before=$2; shift 2; fi
pkg=$1; shift
N=${GOBENCH_N:-40000}
tmp=$(mktemp -d); trap 'git worktree remove --force "$tmp/wt" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go test -c -o "$tmp/after.test" "$pkg"
if [ -n "$before" ]; then
  git worktree add -q --detach "$tmp/wt" "$before"
  (cd "$tmp/wt" && CGO_ENABLED=0 go test -c -o "$tmp/before.test" "$pkg")
fi
# ops BIN BENCH ITER: total instructions of one run.
ops() {
  GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    "$1" -test.run '^$' -test.bench "^$2\$" -test.benchtime "$3x" >/dev/null 2>&1
  awk '/^(summary|totals):/ {print $2; exit}' "$tmp/cg.out"
}
per_op() { local a h; a=$(ops "$1" "$2" "$N"); h=$(ops "$1" "$2" $((N / 2))); echo $(((a - h) / (N - N / 2))); }
if [ -n "$before" ]; then
  echo "| benchmark ($pkg) | $before | $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes) | after ÷ before |"
  echo "|---|---:|---:|---:|"
else
  echo "| benchmark ($pkg) | $(git rev-parse --short HEAD) |"
  echo "|---|---:|"
fi
for b in "$@"; do
  a=$(per_op "$tmp/after.test" "$b")
  if [ -n "$before" ]; then
    o=$(per_op "$tmp/before.test" "$b")
    awk -v b="$b" -v o="$o" -v a="$a" 'BEGIN {printf "| %s | %d | %d | %.2f |\n", b, o, a, a / o}'
  else
    echo "| $b | $a |"
  fi
done
