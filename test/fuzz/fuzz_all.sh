#!/usr/bin/env bash
# test/fuzz/fuzz_all.sh BUILD_DIR - run every fuzz target (`make fuzz-all`).
#
# Each libFuzzer target of BUILD_DIR (built with -DMOONGATE_FUZZ=ON) runs
# for FUZZ_SECONDS (60) or until FUZZ_RUNS executions (0: no limit),
# whichever comes first, on a working corpus BUILD_DIR/corpus/NAME seeded
# from test/fuzz/corpus_*; crashes go to BUILD_DIR/artifacts/, each run's
# log to BUILD_DIR/logs/NAME.log. Then the LuaJIT driver
# (test/fuzz/fuzz_lua.lua) runs for FUZZ_SECONDS. FUZZ_TARGETS (a list of
# names) picks some; FUZZ_NICE (e.g. "nice -n 19") is put in front of
# every run; FUZZ_FLAGS (e.g. "-max_len=600") is added to every libFuzzer
# command line. One line per target:
#
#   RESULT fuzz=fuzz_gate execs=1234567 seconds=60 crashes=0
#
# The exit status is 1 when any target crashed or failed.
set -u
build=${1:?usage: fuzz_all.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-0}
nice=${FUZZ_NICE:-}
flags=${FUZZ_FLAGS:-}
all="fuzz_kcp_input fuzz_wire fuzz_fec fuzz_gate fuzz_session fuzz_frame
     fuzz_url fuzz_admin fuzz_sync fuzz_config fuzz_lua"
targets=${FUZZ_TARGETS:-$all}

# the seed corpus of each target
seeds_of() {
	case $1 in
	fuzz_kcp_input) echo "$root/test/fuzz/corpus" ;;
	fuzz_lua) ;;
	*) echo "$root/test/fuzz/corpus_${1#fuzz_}" ;;
	esac
}

mkdir -p "$build/logs" "$build/artifacts"
status=0
for t in $targets; do
	log=$build/logs/$t.log
	: >"$log.start"
	if [ "$t" = fuzz_lua ]; then
		iters=${runs}
		[ "$iters" -gt 0 ] 2>/dev/null || iters=1000000000
		start=$(date +%s)
		$nice luajit "$root/test/fuzz/fuzz_lua.lua" --iterations "$iters" \
			--seconds "$seconds" "$root" >"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^fuzz_lua: \([0-9]*\) inputs ran clean.*/\1/p' "$log")
	else
		if [ ! -x "$build/$t" ]; then
			echo "fuzz_all: $build/$t is not built" >&2
			status=1
			continue
		fi
		work=$build/corpus/$t
		mkdir -p "$work"
		start=$(date +%s)
		$nice "$build/$t" -max_total_time="$seconds" -runs="${runs/#0/-1}" \
			-artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 \
			$flags "$work" $(seeds_of "$t") >"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	fi
	took=$(( $(date +%s) - start ))
	# crashes: the failing inputs libFuzzer saved for this run (a run stopped by
	# a signal exits 72 without one); the Lua driver saves none, so any
	# failure of it counts as one
	# (not slow-unit-*: an input that took long, which a paused or
	# idle-class run makes of any input; crash-, leak-, timeout-, oom-)
	crashes=$(find "$build/artifacts" -newer "$log.start" \( -name "$t-crash-*" \
		-o -name "$t-leak-*" -o -name "$t-timeout-*" -o -name "$t-oom-*" \) \
		2>/dev/null | wc -l)
	[ $rc -eq 0 ] || [ "$crashes" -gt 0 ] || [ "$t" != fuzz_lua ] || crashes=1
	echo "RESULT fuzz=$t execs=${execs:-0} seconds=$took crashes=$crashes"
	if [ $rc -ne 0 ]; then
		echo "fuzz_all: $t failed (exit $rc): see $log" >&2
		tail -20 "$log" >&2
		status=1
	fi
done
exit $status
