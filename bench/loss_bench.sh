#!/usr/bin/env bash
# loss_bench.sh - message latency under packet loss, KCP over UDP against
# TCP and against ENet with the same kernel-level loss (docs/BENCHMARKS.md,
# "Latency under loss: KCP over UDP against TCP (issue 5, c)" and "KCP
# against ENet (issue 15)").
#
#   bench/loss_bench.sh                              # 0 5 10 20 %, udp and tcp
#   RUNS=3 LOSSES="10 20" TRANSPORTS="udp enet" bench/loss_bench.sh
#   RUNS=1 SECONDS_RUN=15 LOSSES="10" bench/loss_bench.sh
#   SERVER_SET="--set kcp.interval=5" BOT_ARGS="--ack-delay 0 --kcp 1,5,2,1" \
#       TRANSPORTS=udp bench/loss_bench.sh          # another KCP profile
#   BUILD=/tmp/base/build ENET_BUILD=build bench/loss_bench.sh  # another
#       moongate (a baseline build), the same enet-echo
#
# Transports: udp (moongate's KCP over UDP), tcp (moongate over TCP), enet
# (ENet 1.3.17 from libenet-dev with its defaults: build/enet-echo, server
# and clients, bench/enet_echo.c). The runs are interleaved: for each loss,
# run 1 of every transport, then run 2 of every transport..., so a change in
# the machine's load falls on all of them alike.
#
# Needs root (a network namespace) and nftables and, for enet, libenet-dev
# (both installed with scripts/deps.sh nft when missing; enet-echo is built
# by CMake only when libenet is found). Everything runs in a namespace made
# here, mg-loss-PID, whose only interface is its own loopback: one nftables
# rule drops N per mille of the packets arriving on lo, at random (numgen),
# whatever their protocol. Every packet on loopback crosses prerouting
# once, so the loss applies once per packet in each direction: at 10%, a
# round trip loses the message or its echo with probability 19%. The drop
# is in prerouting, not output: a packet dropped in output fails the
# sender's send call (EPERM), which TCP sees and retries at once; dropped
# on its way in, it is lost as on a network, for UDP and TCP alike.
#
# For each loss and transport: a fresh server (build/moongate, no config
# file: the built-in C echo) pinned to CPU 0, and CLIENTS (50) bots at
# RATE (20) messages per second each for SECONDS_RUN (10) s pinned to CPU 1
# (after WARMUP (0) s of the same traffic whose echoes are not timed: ENet's
# RTT estimate starts at 500 ms and takes seconds to come down),
# RUNS (3) times (about 6.5 minutes in all); a run waits up to DRAIN (20) s
# for the last echoes. The namespace, the nftables table with it, and
# every process are removed on exit, on failure and on Ctrl-C. Prints per
# run the bot's RESULT line (with the drop rate the nftables counters
# measured), then per transport and loss the medians over the runs of
# p50, p99, max and the measured drop rate, and the sums over the runs of
# lost, dup, closed (sessions closed before the end), failed (connects)
# and ooo, and last the p99 of every loss and the ratios KCP/TCP:
#   LOSS transport=udp loss_pct=10 p50_ms=... p99_ms=... max_ms=... lost=... dup=... closed=... ...
#   RESULT bench=loss kcp_p99_0=... tcp_p99_0=... enet_p99_0=... ... ratio_10=...
#          kcp_enet_10=... target_ratio=0.333
# ratio_L is KCP/TCP, kcp_enet_L KCP/ENet (p99 at L% loss; each only when
# both transports ran). Extra server options: SERVER_SET (e.g. "--set
# kcp.interval=5"); extra bot options: BOT_ARGS (e.g. "--ack-delay 0 --kcp
# 1,5,2,1"); neither reaches ENet's peers.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
ENET_BUILD=${ENET_BUILD:-$BUILD}
LOSSES=${LOSSES:-"0 5 10 20"}
TRANSPORTS=${TRANSPORTS:-"udp tcp"}
CLIENTS=${CLIENTS:-50}
RATE=${RATE:-20}
SECONDS_RUN=${SECONDS_RUN:-10}
RUNS=${RUNS:-3}
DRAIN=${DRAIN:-20}
WARMUP=${WARMUP:-0}
SERVER_SET=${SERVER_SET:-}
BOT_ARGS=${BOT_ARGS:-}

for t in $TRANSPORTS; do
	case "$t" in
	udp | tcp | enet) ;;
	*) echo "loss_bench: unknown transport '$t' (udp, tcp, enet)" >&2; exit 2 ;;
	esac
done
for b in moongate moongate-bot; do
	[ -x "$BUILD/$b" ] || { echo "loss_bench: $BUILD/$b missing (cmake --build $BUILD --target moongate moongate_bot)" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
	echo "loss_bench: needs root (it makes a network namespace and an nftables rule in it)" >&2
	exit 1
fi
if ! command -v nft >/dev/null 2>&1 ||
	{ [[ " $TRANSPORTS " == *" enet "* ]] && ! pkg-config --exists libenet 2>/dev/null; }; then
	bash scripts/deps.sh nft >&2 || { echo "loss_bench: nft or libenet-dev missing and could not be installed (apt-get install nftables libenet-dev)" >&2; exit 1; }
	command -v nft >/dev/null 2>&1 || { echo "loss_bench: nft still missing" >&2; exit 1; }
fi
if [[ " $TRANSPORTS " == *" enet "* ]] && [ ! -x "$ENET_BUILD/enet-echo" ]; then
	echo "loss_bench: $ENET_BUILD/enet-echo missing (libenet-dev installed? then cmake -S . -B $ENET_BUILD && cmake --build $ENET_BUILD --target enet_echo)" >&2
	exit 1
fi

NS=mg-loss-$$
TMP=$(mktemp -d)
SRV_PID=
BOT_PID=
cleanup() {
	if [ -n "$BOT_PID" ]; then kill "$BOT_PID" 2>/dev/null || true; fi
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
	fi
	# anything still running in the namespace was started here
	if ip netns pids "$NS" >/dev/null 2>&1; then
		for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$NS" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# set_loss PCT: drop PCT% of the packets arriving on lo, counted
set_loss() {
	local pm
	pm=$(awk -v p="$1" 'BEGIN { printf "%d", p * 10 + 0.5 }')
	in_ns nft delete table inet mgloss 2>/dev/null || true
	in_ns nft -f - <<-EOF
	table inet mgloss {
		chain prerouting {
			type filter hook prerouting priority raw; policy accept;
			meta iifname "lo" counter
			meta iifname "lo" numgen random mod 1000 < $pm counter drop
		}
	}
	EOF
}

# the measured drop rate since set_loss, in %
drop_pct() {
	in_ns nft list chain inet mgloss prerouting |
		awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") n[++k] = $(i + 1) }
		     END { printf "%.2f", n[1] ? 100 * n[2] / n[1] : 0 }'
}

# start_server TRANSPORT: moongate (udp, tcp) or enet-echo (enet)
start_server() {
	local name=moongate
	: >"$TMP/srv.out"
	# not through in_ns: $! must be the server itself (ip netns exec and
	# taskset exec it), for --server-pid and for the kill
	if [ "$1" = enet ]; then
		name=enet-echo
		ip netns exec "$NS" taskset -c 0 "$ENET_BUILD/enet-echo" --listen 0 \
			>"$TMP/srv.out" 2>"$TMP/srv.err" &
	else
		# shellcheck disable=SC2086
		ip netns exec "$NS" taskset -c 0 "$BUILD/moongate" --listen udp://127.0.0.1:0 \
			--listen tcp://127.0.0.1:0 --set log_level=warn $SERVER_SET \
			>"$TMP/srv.out" 2>"$TMP/srv.err" &
	fi
	SRV_PID=$!
	for _ in $(seq 50); do
		grep -q "^$name: ready" "$TMP/srv.out" && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "^$name: ready" "$TMP/srv.out" || { echo "loss_bench: $name did not start" >&2; cat "$TMP/srv.err" >&2; exit 1; }
	UDP_PORT=$(awk '/listening udp/ {print $5}' "$TMP/srv.out")
	TCP_PORT=$(awk '/listening tcp/ {print $5}' "$TMP/srv.out")
}

# one bot run; appends its RESULT line, with the measured drop rate, to
# file $3 and prints it. Run in this shell, not a pipeline, so that a
# signal interrupts the wait at once.
bot() {
	local port=$1 t=$2 out=$3
	# connect ramp + handshakes under loss + run + drain + close
	local bound=$((SECONDS_RUN + ${WARMUP%.*} + DRAIN + 60))
	if [ "$t" = enet ]; then
		ip netns exec "$NS" timeout -k 5 "$bound" taskset -c 1 "$ENET_BUILD/enet-echo" \
			--server "127.0.0.1:$port" --server-pid "$SRV_PID" \
			--clients "$CLIENTS" --rate "$RATE" --seconds "$SECONDS_RUN" \
			--connect-rate 100 --drain "$DRAIN" --warmup "$WARMUP" \
			>"$TMP/bot.out" 2>"$TMP/bot.err" &
	else
		# shellcheck disable=SC2086
		ip netns exec "$NS" timeout -k 5 "$bound" taskset -c 1 "$BUILD/moongate-bot" \
			--server "$t://127.0.0.1:$port" --server-pid "$SRV_PID" \
			--clients "$CLIENTS" --rate "$RATE" --seconds "$SECONDS_RUN" \
			--connect-rate 100 --drain "$DRAIN" --warmup "$WARMUP" $BOT_ARGS \
			>"$TMP/bot.out" 2>"$TMP/bot.err" &
	fi
	BOT_PID=$!
	wait "$BOT_PID" || true
	BOT_PID=
	local line
	line=$(grep '^RESULT' "$TMP/bot.out" || true)
	[ -n "$line" ] || line="RESULT none (bot failed or timed out; last stderr line: $(tail -1 "$TMP/bot.err"))"
	echo "$line drop_pct=$(drop_pct)" | tee -a "$out"
	grep -E 'closed \(|connect failed' "$TMP/bot.err" | head -3 | sed 's/^/  /' >&2 || true
	return 0
}

# sum KEY: the sum of KEY=value over the RESULT lines on stdin
sum() { grep -o " $1=[0-9]*" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }'; }

echo "loss_bench: namespace $NS, $CLIENTS clients x $RATE Hz x ${SECONDS_RUN} s (after ${WARMUP} s of warm-up), runs $RUNS, losses: $LOSSES %, transports: $TRANSPORTS${SERVER_SET:+, server: $SERVER_SET}${BOT_ARGS:+, bot: $BOT_ARGS}"
declare -A P99
for loss in $LOSSES; do
	for t in $TRANSPORTS; do : >"$TMP/r-$t-$loss"; done
	# interleaved: run i of every transport, then run i + 1
	for _ in $(seq "$RUNS"); do
		for t in $TRANSPORTS; do
			start_server "$t"
			set_loss "$loss"
			case "$t" in tcp) port=$TCP_PORT ;; *) port=$UDP_PORT ;; esac
			bot "$port" "$t" "$TMP/r-$t-$loss"
			stop_server
		done
	done
	for t in $TRANSPORTS; do
		f="$TMP/r-$t-$loss"
		p99=$(median p99_ms <"$f")
		P99[$t-$loss]=$p99
		echo "LOSS transport=$t loss_pct=$loss p50_ms=$(median p50_ms <"$f") p99_ms=$p99" \
			"max_ms=$(median max_ms <"$f") lost=$(sum lost <"$f") dup=$(sum dup <"$f")" \
			"closed=$(sum closed <"$f") failed=$(sum failed <"$f") ooo=$(sum ooo <"$f")" \
			"drop_pct=$(median drop_pct <"$f") runs=$RUNS"
	done
done

# ratio A B: A/B to 3 decimals, n/a when B is 0 or not a number
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "n/a") printf "%.3f", a / b; else print "n/a" }'; }
line="RESULT bench=loss"
for loss in $LOSSES; do
	for t in $TRANSPORTS; do
		k=$t; [ "$t" = udp ] && k=kcp
		line="$line ${k}_p99_$loss=${P99[$t-$loss]}"
	done
done
for loss in $LOSSES; do
	u=${P99[udp-$loss]:-} c=${P99[tcp-$loss]:-} e=${P99[enet-$loss]:-}
	[ -n "$u" ] && [ -n "$c" ] && line="$line ratio_$loss=$(ratio "$u" "$c")"
	[ -n "$u" ] && [ -n "$e" ] && line="$line kcp_enet_$loss=$(ratio "$u" "$e")"
done
echo "$line target_ratio=0.333 clients=$CLIENTS rate=$RATE seconds=$SECONDS_RUN warmup=$WARMUP runs=$RUNS"
