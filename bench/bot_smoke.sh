#!/usr/bin/env bash
# bot_smoke.sh MOONGATE MOONGATE_BOT - ctest bench_bot_procs_smoke: a few
# clients for 1 s over 2 worker processes (--procs 2) against a server on
# loopback; passes when the merged RESULT line has every client connected,
# nothing lost, and procs=2 bot_cpu_max=... rtt_per_server_cpu_s=...
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SRV_BIN=$1 BOT_BIN=$2
N=6
bench_setup bot_smoke
bench_start_server "$SRV_BIN" --listen udp://127.0.0.1:0 --set log_level=warn
line=$(timeout -k 5 30 "$BOT_BIN" --server udp://127.0.0.1:"$UDP_PORT" \
	--server-pid "$SRV_PID" --clients "$N" --rate 20 --seconds 1 \
	--procs 2 2>"$TMP/bot.err" | grep '^RESULT') || {
	echo "bot_smoke: no RESULT line; the bot's stderr:" >&2
	cat "$TMP/bot.err" >&2
	exit 1
}
stop_server
echo "$line"
for want in " clients=$N " " connected=$N " " failed=0 " " lost=0 " " procs=2 " \
	" bot_cpu_max=" " rtt_per_server_cpu_s="; do
	case "$line" in
	*"$want"*) ;;
	*) echo "bot_smoke: '$want' missing" >&2; exit 1 ;;
	esac
done
echo "bot_smoke: ok"
