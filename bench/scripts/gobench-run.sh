# run TITLE TARGET COMMAND…: appends a block to "$out" (set by the sourcing script) with the
# title, the target, the command and its benchmark lines. Sourced by the section-*.sh scripts.
run() {
	local title=$1 target=$2
	shift 2
	{
		echo "### $title"
		echo
		echo "Target: $target"
		echo
		echo '```'
		echo "\$ $*"
		"$@" 2>&1 | grep -E '^(Benchmark|ok|FAIL|PASS)' || true
		echo '```'
		echo
	} >>"$out"
}
