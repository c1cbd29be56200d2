#!/usr/bin/env bash
# Measures the hostile PDF corpus (document/pdftest.HostileCorpus): per document the wall and CPU
# time and the peak live heap of one read with the default limits (TestHostileCorpus), the Go
# benchmark of the same reads (BenchmarkHostile: ns/op, B/op, peak-MiB), and the peak RSS of the
# whole test process, corpus generation included.
#
#   bash document/hostile.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/document.test" .
echo "== one read per hostile document (default limits)"
"$tmp/document.test" -test.run '^TestHostileCorpus$' -test.v | grep -E 'hostile_test|^(PASS|FAIL|ok)' | sed 's/^ *hostile_test.go:[0-9]*: //'
echo "== peak RSS of that process"
if [ -x /usr/bin/time ]; then
	/usr/bin/time -f '%M KiB max RSS, %U s user, %S s system, %e s wall' "$tmp/document.test" -test.run '^TestHostileCorpus$' 2>&1 | tail -1
else
	echo "(install GNU time for the RSS figure)"
fi
echo "== go benchmark"
"$tmp/document.test" -test.run '^$' -test.bench '^BenchmarkHostile$' -test.benchtime 5x -test.benchmem | grep -E '^Benchmark'
