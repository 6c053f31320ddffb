#!/usr/bin/env bash
# colyseus_bench.sh - the room_bench workload (state sync) on Colyseus, side
# by side with moongate's (docs/BENCHMARKS.md, "Rooms against Colyseus
# (issue 15)"): bots in rooms of 8, each sending a 32-byte state 20 times
# a second, the room sending every member the newest state of the others
# 20 times a second. Server CPU per state update, bytes per player, relay
# latency. 400 bots (50 rooms) by default, not room_bench's 800: the node
# load generator needs 0.70-0.97 of its core for 800 (over the 0.7 a load
# generator may use; a second process on the same core adds nothing, and
# the other core is the server's), 0.52-0.60 for 400 over ws:// and
# 0.60-0.72 over wss:// (TLS adds a record to encrypt or decrypt per
# message). CLIENTS=800 runs the room_bench size, with the bot as a limit.
#
#   bench/colyseus_bench.sh                  # 3 interleaved runs each, medians
#   QUICK=1 bench/colyseus_bench.sh          # 1 run each, 5 s
#   ROOMS="state bcast" bench/colyseus_bench.sh   # both Colyseus rooms
#   TRANSPORTS=wss bench/colyseus_bench.sh   # Colyseus over TLS only
#                                            # (default "ws wss": both)
#   MOONGATE=0 bench/colyseus_bench.sh       # Colyseus only
#   BOT_PROCS=2 CLIENTS=400 RUNS=5 SECONDS_RUN=30 bench/colyseus_bench.sh
#
# TRANSPORTS: ws, Colyseus over plain ws:// (its default, neither
# encrypted nor authenticated); wss, the same server behind Node's https
# server (TLS 1.3, the suite Node and OpenSSL negotiate by default:
# TLS_AES_256_GCM_SHA384 here) and the bots over wss://, what a production
# Colyseus runs and the like-for-like peer of moongate's sealed packets
# (confidentiality and integrity both). The certificate: self-signed for
# IP 127.0.0.1 (ECDSA P-256), made once per invocation with `openssl req`
# into the temp dir (removed on exit; no key is committed); the bots trust
# it as an extra CA (bot.js --ca: NODE_EXTRA_CA_CERTS), verification on.
# No openssl: wss is skipped with a message.
#
# Colyseus (the versions pinned in bench/colyseus/package.json and
# package-lock.json) is installed with `npm ci` into $BUILD/colyseus, from
# the npm registry only, and again only when the lock file changes; no
# node or npm: the script says so and exits 0 (skipped). Not part of
# `make test`.
#
# Each run starts a fresh server pinned to CPU 0 (node
# bench/colyseus/server.js, room "state": Schema state and the patch loop,
# Colyseus's normal way; "bcast": a hand-written relay with broadcastBytes)
# and the load generator pinned to CPU 1 (node bench/colyseus/bot.js,
# colyseus.js clients over WebSocket, BOT_PROCS processes). Loopback only;
# each run bounded by timeout(1), the whole script by TOTAL_S (900 s). With
# MOONGATE=1 (the default, when $BUILD/moongate and moongate-room-bot
# exist) each Colyseus run is followed by one run of
# `MODES=relay RUNS=1 bench/room_bench.sh` with the same CLIENTS, RATE,
# SECONDS_RUN, so the two alternate.
#
# An update is one player's state message received by the server; both
# sides count the sends of the run phase (sent=): us_per_update = server
# CPU seconds (utime + stime from /proc/PID/stat over the run phase) x 1e6
# / sent. Bytes per player per second: moongate, the client sessions' UDP
# payloads (sealed packets, no IP/UDP header); Colyseus, what each client's
# TCP socket read and wrote (ws: WebSocket frames; wss: TLS records, the
# TCP stream under the TLS socket; no TCP/IP header either way).
#
# Output: each run's RESULT line, then per Colyseus room and transport one
# RESULT line of medians (each figure's median on its own), the same for
# moongate, and RESULT bench=rooms_vs_colyseus per room and transport with
# the ratios (moongate / Colyseus).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${RUNS:-1}; SECONDS_RUN=${SECONDS_RUN:-5}
else
	RUNS=${RUNS:-3}; SECONDS_RUN=${SECONDS_RUN:-20}
fi
ROOMS=${ROOMS:-state}
TRANSPORTS=${TRANSPORTS:-ws wss}
CLIENTS=${CLIENTS:-400}
ROOM_SIZE=${ROOM_SIZE:-8}
RATE=${RATE:-20}
BOT_PROCS=${BOT_PROCS:-1}
CONNECT_RATE=${CONNECT_RATE:-400}
TOTAL_S=${TOTAL_S:-900}
MOONGATE=${MOONGATE:-1}
CDIR=$BUILD/colyseus

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "colyseus_bench: skipped: node and npm are needed (Debian: apt-get install nodejs npm)"
	exit 0
fi
nodemaj=$(node -p 'process.versions.node.split(".")[0]')
if [ "$nodemaj" -lt 20 ]; then
	echo "colyseus_bench: skipped: Colyseus 0.16 needs Node >= 20 (have $(node --version))"
	exit 0
fi
if [ "$MOONGATE" = 1 ]; then
	for b in moongate moongate-room-bot; do
		[ -x "$BUILD/$b" ] || {
			echo "colyseus_bench: $BUILD/$b missing (make build): moongate's side skipped"
			MOONGATE=0
		}
	done
fi

# install, from the lock file, only when it changed
mkdir -p "$CDIR"
if ! cmp -s bench/colyseus/package-lock.json "$CDIR/package-lock.json" ||
	! cmp -s bench/colyseus/package.json "$CDIR/package.json" ||
	[ ! -d "$CDIR/node_modules/@colyseus/core" ]; then
	cp bench/colyseus/package.json bench/colyseus/package-lock.json "$CDIR/"
	echo "colyseus_bench: npm ci --prefix $CDIR"
	timeout 300 npm ci --prefix "$CDIR" --no-audit --no-fund --loglevel=error ||
		{ echo "colyseus_bench: npm ci failed" >&2; exit 1; }
fi
cp bench/colyseus/server.js bench/colyseus/bot.js "$CDIR/"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench_setup colyseus_bench

case " $TRANSPORTS " in
*" wss "*)
	if ! command -v openssl >/dev/null; then
		echo "colyseus_bench: wss skipped: openssl is needed for its certificate (Debian: apt-get install openssl)"
		TRANSPORTS=$(echo " $TRANSPORTS " | sed 's/ wss / /g')
	elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>"$TMP/openssl.err"; then
		echo "colyseus_bench: openssl req failed: $(tail -1 "$TMP/openssl.err")" >&2
		exit 1
	fi
	;;
esac
for t in $TRANSPORTS; do
	case $t in ws | wss) ;; *) echo "colyseus_bench: unknown transport $t (ws, wss)" >&2; exit 2 ;; esac
done

# start_colyseus ws|wss
start_colyseus() {
	local tls=()
	[ "$1" = wss ] && tls=(--tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key")
	: >"$TMP/srv.out"
	taskset -c 0 node "$CDIR/server.js" --host 127.0.0.1 --port 0 "${tls[@]}" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	SRV_PID=$!
	for _ in $(seq 100); do
		grep -q '^colyseus: ready' "$TMP/srv.out" && break
		sleep 0.1
	done
	grep -q '^colyseus: ready' "$TMP/srv.out" || {
		echo "colyseus_bench: server did not start" >&2
		cat "$TMP/srv.err" >&2
		exit 1
	}
	PORT=$(awk '/^colyseus: ready/ {print $3}' "$TMP/srv.out")
}

BOUND=$((SECONDS_RUN + 120)) # connect (<= 60 s), run, drain, leave
STEP=$((BOUND + 15))
MSTEP=$((SECONDS_RUN + 60))
med() { median "$1" <"$2"; }
# us per update of a moongate-room-bot line: its server_us_per_update
# (from the unrounded CPU time) when it has one, else server_cpu (two
# decimals) x seconds / sent
mg_us() { awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (v["server_us_per_update"] != "") printf " us_per_update=%s\n", v["server_us_per_update"]
	else if (v["sent"] > 0) printf " us_per_update=%.2f\n", v["server_cpu"] * v["seconds"] * 1e6 / v["sent"] }'; }

echo "== $CLIENTS bots in rooms of $ROOM_SIZE, $RATE Hz, ${SECONDS_RUN} s, $RUNS run(s); Colyseus rooms: $ROOMS; transports: $TRANSPORTS; server on CPU 0, bots on CPU 1 ($BOT_PROCS process(es))"
echo "== node $(node --version), Colyseus $(node -p "require('./$CDIR/package-lock.json').packages['node_modules/@colyseus/core'].version"), schema $(node -p "require('./$CDIR/package-lock.json').packages['node_modules/@colyseus/schema'].version"), colyseus.js $(node -p "require('./$CDIR/package-lock.json').packages['node_modules/colyseus.js'].version")"
for r in $ROOMS; do for t in $TRANSPORTS; do : >"$TMP/runs.$r.$t"; done; done
: >"$TMP/runs.moongate"
for run in $(seq "$RUNS"); do
	for r in $ROOMS; do for t in $TRANSPORTS; do
		if [ $((SECONDS + STEP)) -gt "$TOTAL_S" ]; then
			echo "colyseus_bench: skipping $r $t run $run: it would pass TOTAL_S=$TOTAL_S s"
			continue
		fi
		start_colyseus "$t"
		ca=()
		[ "$t" = wss ] && ca=(--ca "$TMP/tls.crt")
		rc=0
		timeout -k 5 "$BOUND" taskset -c 1 node "$CDIR/bot.js" \
			--server "$t://127.0.0.1:$PORT" "${ca[@]}" --server-pid "$SRV_PID" --room "$r" \
			--clients "$CLIENTS" --room-size "$ROOM_SIZE" --rate "$RATE" \
			--seconds "$SECONDS_RUN" --procs "$BOT_PROCS" --connect-rate "$CONNECT_RATE" \
			>"$TMP/bot.out" 2>"$TMP/bot.err" || rc=$?
		stop_server
		[ "$rc" = 0 ] || echo "colyseus_bench: $r $t run $run: bot exited with $rc"
		line=$(grep '^RESULT' "$TMP/bot.out") ||
			line="RESULT none (bot exit $rc; last stderr line: $(tail -1 "$TMP/bot.err"))"
		echo "$line" >>"$TMP/runs.$r.$t"
		echo "colyseus $r $t run $run/$RUNS: $line"
		grep -v 'seated, 0 failed' "$TMP/bot.err" | head -5 || true
		grep -iv 'already_shutting_down' "$TMP/srv.err" | grep -i 'error' | head -3 || true
	done; done
	if [ "$MOONGATE" = 1 ]; then
		if [ $((SECONDS + MSTEP)) -gt "$TOTAL_S" ]; then
			echo "colyseus_bench: skipping moongate run $run: it would pass TOTAL_S=$TOTAL_S s"
			continue
		fi
		BUILD=$BUILD MODES=relay RUNS=1 SECONDS_RUN=$SECONDS_RUN CLIENTS=$CLIENTS \
			ROOM_SIZE=$ROOM_SIZE RATE=$RATE TOTAL_S=$MSTEP QUICK=0 \
			bench/room_bench.sh >"$TMP/mg.out" 2>&1 || true
		line=$(grep '^run 1/1: RESULT bench=' "$TMP/mg.out" | sed 's/^run 1\/1: //') ||
			line="RESULT none (room_bench: $(tail -1 "$TMP/mg.out"))"
		case $line in
		"RESULT bench="*) line="$line$(echo "$line" | mg_us)" ;;
		esac
		echo "$line" >>"$TMP/runs.moongate"
		echo "moongate relay run $run/$RUNS: $line"
	fi
done

for r in $ROOMS; do for t in $TRANSPORTS; do
	f=$TMP/runs.$r.$t
	if grep -q '^RESULT bench=' "$f"; then
		echo "RESULT bench=colyseus_rooms room=$r transport=$t $(grep -o ' tls=[^ ]* cipher=[^ ]*' "$f" | head -1 | sed 's/^ //') rooms=$(med rooms "$f") bots=$CLIENTS rate=$RATE seconds=$SECONDS_RUN runs=$(grep -c '^RESULT bench=' "$f") server_cpu=$(med server_cpu "$f") us_per_update=$(med us_per_update "$f") in_bytes_per_s_per_player=$(med in_bytes_per_s_per_player "$f") out_bytes_per_s_per_player=$(med out_bytes_per_s_per_player "$f") in_ws_bytes_per_s_per_player=$(med in_ws_bytes_per_s_per_player "$f") out_ws_bytes_per_s_per_player=$(med out_ws_bytes_per_s_per_player "$f") p50_ms=$(med p50_ms "$f") p99_ms=$(med p99_ms "$f") lost=$(med lost "$f") delivered=$(med delivered "$f") bot_cpu=$(med bot_cpu "$f") bot_cpu_max=$(med bot_cpu_max "$f") procs=$BOT_PROCS tcp_segs_per_s_per_player=$(med tcp_segs_per_s_per_player "$f")"
	else
		echo "RESULT bench=colyseus_rooms room=$r transport=$t runs=0 (no run finished)"
	fi
done; done
f=$TMP/runs.moongate
if [ "$MOONGATE" = 1 ] && grep -q '^RESULT bench=' "$f"; then
	echo "RESULT bench=rooms mode=relay rooms=$(med rooms "$f") bots=$CLIENTS rate=$RATE seconds=$SECONDS_RUN runs=$(grep -c '^RESULT bench=' "$f") server_cpu=$(med server_cpu "$f") us_per_update=$(med us_per_update "$f") in_bytes_per_s_per_player=$(med in_bytes_per_s_per_player "$f") out_bytes_per_s_per_player=$(med out_bytes_per_s_per_player "$f") p50_ms=$(med p50_ms "$f") p99_ms=$(med p99_ms "$f") lost=$(med lost "$f") delivered=$(med delivered "$f") bot_cpu=$(med bot_cpu "$f")"
	for r in $ROOMS; do for t in $TRANSPORTS; do
		c=$TMP/runs.$r.$t
		grep -q '^RESULT bench=' "$c" || continue
		awk -v room="$r" -v tr="$t" -v mu="$(med us_per_update "$f")" -v cu="$(med us_per_update "$c")" \
			-v mi="$(med in_bytes_per_s_per_player "$f")" -v ci="$(med in_bytes_per_s_per_player "$c")" \
			-v mo="$(med out_bytes_per_s_per_player "$f")" -v co="$(med out_bytes_per_s_per_player "$c")" 'BEGIN {
			r = mu / cu
			printf "RESULT bench=rooms_vs_colyseus room=%s transport=%s moongate_us_per_update=%s colyseus_us_per_update=%s cpu_ratio=%.3f cpu_target=0.2 cpu_met=%d in_bytes_ratio=%.3f out_bytes_ratio=%.3f bytes_met=%d\n",
				room, tr, mu, cu, r, r <= 0.2, mi / ci, mo / co, (mi <= ci && mo <= co)
		}'
	done; done
fi
echo "colyseus_bench: done in ${SECONDS} s"
