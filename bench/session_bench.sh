#!/usr/bin/env bash
# session_bench.sh - the session layer's figures (docs/BENCHMARKS.md,
# "Sessions (issue 3)", "One flush per wakeup (issue 15)"): bare UDP echo,
# saturated session round trips (the library's default client, the server
# on ChaCha20-Poly1305, and a client with manual_flush), 2000 sessions at
# 20 Hz over UDP and TCP, the largest session count that holds p99 < 5 ms
# at 20 Hz, memory per idle session. Every session figure comes with the
# server's CPU, echoes per server CPU-second and the server's system calls
# per echo (read from its admin console: moongate-bot --server-admin).
#
#   bench/session_bench.sh            # full: 3 runs per figure, medians
#   QUICK=1 bench/session_bench.sh    # 1 run each, shorter, fewer counts
#   BUILD=build COUNTS="3000 4000" bench/session_bench.sh
#   BOT_PROCS=2 bench/session_bench.sh           # the bot over 2 processes
#   BOT_PROCS=2 BOT_CPUS=0,1 bench/session_bench.sh  # ... worker i on CPU i
#   PARTS="echo sat" SAT="default tcp" bench/session_bench.sh  # some parts only
#
# PARTS (default "echo sat load scale idle") picks the sections below; SAT
# (default "default chacha manual_flush tcp") the saturated variants: tcp
# is the default client over TCP (target >= 0.4 of the bare UDP echo).
#
# The server is pinned to CPU 0, the bot to CPU 1 (udp_echo pins itself
# the same way); BOT_PROCS (1) is the bot's --procs: its clients spread
# over that many worker processes, all on CPU 1 unless BOT_CPUS (its
# --cpus) pins them elsewhere. Every run is bounded by timeout(1); everything started
# here is killed on exit. Needs 2 CPUs.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=1; ECHO_S=2; SAT_S=3; LOAD_S=5; SCALE_S=5
	COUNTS=${COUNTS:-"4000 5000"}; IDLE=${IDLE:-"2000"}
else
	RUNS=3; ECHO_S=5; SAT_S=5; LOAD_S=10; SCALE_S=10
	COUNTS=${COUNTS:-"3000 4000 4500 5000 6000"}; IDLE=${IDLE:-"2000 5000"}
fi
CLIENTS_SAT=${CLIENTS_SAT:-100}
WINDOW=${WINDOW:-16}
# the server's UDP socket buffers (the default is 4 MiB; 0, the system's
# 208 KiB, overflows above ~2000 sessions at 20 Hz: KCP retransmits,
# p99 > 100 ms)
BUF=${BUF:-4194304}
BOT_PROCS=${BOT_PROCS:-1}
BOT_CPUS=${BOT_CPUS:-}

for b in moongate moongate-bot udp_echo; do
	[ -x "$BUILD/$b" ] || { echo "session_bench: $BUILD/$b missing (cmake --build $BUILD --target moongate moongate_bot udp_echo)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench_setup session_bench

# start_server [--set K=V ...]: sets SRV_PID, UDP_PORT, TCP_PORT, SRV_KEY;
# its admin console (the built-in echo answers `stats`) at $TMP/admin
start_server() {
	rm -f "$TMP/admin"
	bench_start_server "$BUILD/moongate" --listen udp://127.0.0.1:0 \
		--listen tcp://127.0.0.1:0 --set log_level=warn \
		--set net.max_conns=20000 --set net.max_conns_per_addr=0 \
		--set admin="unix:$TMP/admin" "$@"
	SRV_KEY=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
}


# bot SECONDS_BOUND ARGS...: one bounded bot run, prints its RESULT line
bot() {
	local bound=$1; shift
	timeout -k 5 "$bound" taskset -c 1 "$BUILD/moongate-bot" \
		--server-pid "$SRV_PID" --server-admin "unix:$TMP/admin" --procs "$BOT_PROCS" \
		${BOT_CPUS:+--cpus "$BOT_CPUS"} "$@" 2>"$TMP/bot.err" | grep '^RESULT' || {
		echo "RESULT none (bot failed or timed out; last stderr line: $(tail -1 "$TMP/bot.err"))"
	}
}


field() { grep -o " $1=[-0-9.]*" | head -1 | cut -d= -f2; }
# url TRANSPORT PORT: the server's url, pinned to its key (as clients are)
url() { echo "$1://127.0.0.1:$2?key=$SRV_KEY"; }

PARTS=${PARTS:-"echo sat load scale idle"}
SAT=${SAT:-"default chacha manual_flush tcp"}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
if part sat && ! part echo; then
	echo "session_bench: PARTS with sat needs echo (its ratio's base)" >&2
	exit 2
fi

if part echo; then
echo "== 1. bare UDP echo (udp_echo pins server to CPU 0, client to CPU 1)"
: >"$TMP/echo"
for _ in $(seq "$RUNS"); do
	timeout -k 5 $((ECHO_S + 30)) "$BUILD/udp_echo" --seconds "$ECHO_S" --batch 32 | grep '^RESULT' | tee -a "$TMP/echo"
done
ECHO=$(median rtt_per_s <"$TMP/echo")
ECHO_CPU=$(median server_cpu <"$TMP/echo")
ECHO_PER_CPU=$(awk -v r="$ECHO" -v c="$ECHO_CPU" 'BEGIN { printf "%.0f", r / c }')
echo "MEDIAN udp_echo batch=32 rtt_per_s=$ECHO server_cpu=$ECHO_CPU rtt_per_server_cpu_s=$ECHO_PER_CPU"
fi

echo "== 2. saturated sessions: $CLIENTS_SAT clients, window $WINDOW, pinned"
# variant NAME "BOT ARGS" "SERVER ARGS"
sat() {
	local name=$1 botargs=$2; shift 2
	local tr=udp target=0.5
	[ "$name" = tcp ] && tr=tcp && target=0.4
	: >"$TMP/sat"
	for _ in $(seq "$RUNS"); do
		start_server "$@"
		local port=$UDP_PORT
		[ "$tr" = tcp ] && port=$TCP_PORT
		bot $((SAT_S + 40)) --server "$(url "$tr" "$port")" \
			--clients "$CLIENTS_SAT" --window "$WINDOW" --seconds "$SAT_S" $botargs | tee -a "$TMP/sat"
		stop_server
	done
	local per
	per=$(median msgs_per_server_cpu_s <"$TMP/sat")
	echo "MEDIAN sessions $name rtt_per_s=$(median rtt_per_s <"$TMP/sat") server_cpu=$(median server_cpu <"$TMP/sat") bot_cpu=$(median bot_cpu <"$TMP/sat") msgs_per_server_cpu_s=$per server_syscalls_per_msg=$(median server_syscalls_per_msg <"$TMP/sat") server_dgrams_per_msg=$(median server_dgrams_per_msg <"$TMP/sat")"
	awk -v s="$per" -v e="$ECHO_PER_CPU" -v n="$name" -v t="$target" 'BEGIN { printf "RATIO sessions %s / bare echo, per server CPU-second = %.2f (target >= %s)\n", n, s / e, t }'
}
for v in $SAT; do
	case $v in
	default) part sat && sat default "" ;;
	chacha) part sat && sat chacha "" --set session.aes=0 ;;
	manual_flush) part sat && sat manual_flush "--manual-flush 1" ;;
	tcp) part sat && sat tcp "" ;;
	*) echo "session_bench: unknown SAT variant $v" >&2; exit 2 ;;
	esac
done

if part load; then
echo "== 3. 2000 sessions at 20 Hz for ${LOAD_S} s (targets: server_cpu <= 0.35, p99 < 5 ms, lost 0)"
: >"$TMP/load"
for _ in $(seq "$RUNS"); do
	start_server
	bot $((LOAD_S + 60)) --server "$(url udp "$UDP_PORT")" --clients 2000 \
		--rate 20 --seconds "$LOAD_S" --connect-rate 2000 | tee -a "$TMP/load"
	stop_server
done
echo "MEDIAN 2000@20Hz udp server_cpu=$(median server_cpu <"$TMP/load") p99_ms=$(median p99_ms <"$TMP/load") bot_cpu=$(median bot_cpu <"$TMP/load") server_syscalls_per_msg=$(median server_syscalls_per_msg <"$TMP/load") lost_max=$(grep -o ' lost=[0-9]*' "$TMP/load" | cut -d= -f2 | sort -n | tail -1)"
: >"$TMP/load"
for _ in $(seq "$RUNS"); do
	start_server
	bot $((LOAD_S + 60)) --server "$(url tcp "$TCP_PORT")" --clients 2000 \
		--rate 20 --seconds "$LOAD_S" --connect-rate 2000 | tee -a "$TMP/load"
	stop_server
done
echo "MEDIAN 2000@20Hz tcp server_cpu=$(median server_cpu <"$TMP/load") p99_ms=$(median p99_ms <"$TMP/load") bot_cpu=$(median bot_cpu <"$TMP/load") server_syscalls_per_msg=$(median server_syscalls_per_msg <"$TMP/load") lost_max=$(grep -o ' lost=[0-9]*' "$TMP/load" | cut -d= -f2 | sort -n | tail -1)"
fi

if part scale; then
echo "== 3b. scaling at 20 Hz, UDP, ${SCALE_S} s each, net.udp_rcvbuf=net.udp_sndbuf=$BUF: largest count with p99 < 5 ms and lost 0"
best=2000
for n in $COUNTS; do
	start_server --set net.udp_rcvbuf="$BUF" --set net.udp_sndbuf="$BUF"
	line=$(bot $((SCALE_S + 60)) --server "$(url udp "$UDP_PORT")" --clients "$n" \
		--rate 20 --seconds "$SCALE_S" --connect-rate 4000)
	stop_server
	echo "$line"
	p99=$(echo "$line" | field p99_ms); lost=$(echo "$line" | field lost)
	fail=$(echo "$line" | field failed)
	if [ -n "$p99" ] && awk -v p="$p99" 'BEGIN { exit !(p < 5) }' && [ "$lost" = 0 ] && [ "$fail" = 0 ]; then
		best=$n
	else
		echo "($n misses the target)"
		break
	fi
done
echo "LARGEST at 20 Hz with p99 < 5 ms, lost 0: $best sessions (of: 2000 $COUNTS)"
fi

if part idle; then
echo "== 4. memory per idle session (server VmRSS before and with N idle sessions)"
for n in $IDLE; do
	start_server
	line=$(bot 90 --server "$(url udp "$UDP_PORT")" --clients "$n" --rate 0 \
		--seconds 3 --connect-rate 4000)
	stop_server
	echo "$line"
	b=$(echo "$line" | field server_rss_before_kb); a=$(echo "$line" | field server_rss_kb)
	awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "IDLE sessions=%d rss_before_kb=%d rss_kb=%d bytes_per_session=%.0f (target < 4096)\n", n, b, a, (a - b) * 1024 / n }'
done
fi

