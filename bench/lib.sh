# bench/lib.sh - shared by the benchmark scripts (sourced, not run).
#
# stop_server: SIGTERM to $SRV_PID, wait up to 10 s, then SIGKILL.
# median KEY: the median of KEY=value over the RESULT lines on stdin.

stop_server() {
	kill "$SRV_PID" 2>/dev/null || true
	timeout 10 tail --pid="$SRV_PID" -f /dev/null 2>/dev/null || kill -9 "$SRV_PID" 2>/dev/null || true
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=
}

median() {
	grep -o " $1=[0-9.]*" | cut -d= -f2 | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'
}
