#!/usr/bin/env bash
# netem_bench.sh - the benchmarks of issue 5 that run the real server
# through moongate-netem (docs/BENCHMARKS.md, "Resume, reconnect and FEC
# (issue 5)"), one after the other, each bounded by timeout(1):
#
#   resume_bench.lua                   resume after an outage, UDP then TCP,
#                                      reconnect_ms 500 (the default)
#   resume_bench.lua reconnect_ms=250  the same with knocks every 250 ms
#   reconnect_bench.lua                TCP reconnect + login without resume,
#                                      beside resume over TCP
#   fec_loss_bench.lua                 echo latency and bytes, FEC off / on,
#                                      at 10% loss each way
#
#   bench/netem_bench.sh               # about 8 minutes
#   QUICK=1 bench/netem_bench.sh       # 3 rounds, 5 s of FEC traffic
#
# Needs `make build` (build/moongate, build/moongate-netem,
# build/lua/moongate/client.so) and luajit. Prints the progress on stderr
# and every RESULT line on stdout; exits non-zero if any run failed (a
# message lost or duplicated where it must not be, a session that did not
# come back). Each script's keys can be set in the environment, in upper
# case (CLIENTS=50 bench/netem_bench.sh); a key a script does not have is
# ignored by it.
set -uo pipefail

cd "$(dirname "$0")/.."
for f in build/moongate build/moongate-netem build/lua/moongate/client.so; do
	[ -e "$f" ] || { echo "netem_bench: $f missing (make build)" >&2; exit 1; }
done
command -v luajit >/dev/null || { echo "netem_bench: luajit missing" >&2; exit 1; }

quick=()
if [ -n "${QUICK:-}" ]; then
	quick=(rounds=3)
fi
rc=0
run() {
	local limit=$1
	shift
	echo "# luajit $*" >&2
	timeout -k 10 "$limit" luajit "$@" || { echo "netem_bench: $* failed ($?)" >&2; rc=1; }
}
run 400 bench/resume_bench.lua "${quick[@]}"
run 400 bench/resume_bench.lua reconnect_ms=250 "${quick[@]}"
run 400 bench/reconnect_bench.lua "${quick[@]}"
if [ -n "${QUICK:-}" ]; then
	run 200 bench/fec_loss_bench.lua seconds=5
else
	run 200 bench/fec_loss_bench.lua
fi
exit $rc
