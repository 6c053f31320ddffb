#!/usr/bin/env bash
# login_bench.sh - logins per second through the login service
# (docs/BENCHMARKS.md, "Logins per second (issue 16)"), four ways:
#
#   dev    the development login (no I/O): the cost of a login itself
#   redis  the player's record, id and revocation check in Redis
#   http   login.authenticate asks a backend over HTTP (moongate.http;
#          test/lib/http_backend.py, answering at once)
#   both   http and redis
#
#   bench/login_bench.sh                      # every mode, RUNS=3 each, interleaved
#   MODES="dev redis" RUNS=5 SECONDS_RUN=10 INFLIGHT=64 bench/login_bench.sh
#
# The server is pinned to CPU 0; the driver (bench/login_bench.lua, the Lua
# client), redis-server and the backend share CPU 1: a login is a fresh
# client with a handshake v2 (X25519 on both sides), a hello naming a new
# player, the login reply, and a close. Each run is bounded by timeout(1).
# Prints one RESULT line per run and a median line per mode:
#   RESULT bench=login_median mode=... logins_per_s=... logins_per_server_cpu_s=... p50_ms=... p99_ms=... server_cpu=... bot_cpu=...
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
MODES=${MODES:-"dev redis http both"}
RUNS=${RUNS:-3}
SECONDS_RUN=${SECONDS_RUN:-10}
INFLIGHT=${INFLIGHT:-64}
BUILD=${BUILD:-build}

for b in "$BUILD/moongate" "$BUILD/lua/moongate/client.so"; do
	[ -e "$b" ] || { echo "login_bench: $b missing (build first)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "login_bench: no redis-server" >&2; exit 1; }

bench_setup login_bench
export LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" LUA_CPATH="$PWD/$BUILD/lua/?.so;;"

REDIS_PID= HB_PID=
cleanup_more() {
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
	[ -n "$HB_PID" ] && kill "$HB_PID" 2>/dev/null || true
	bench_cleanup
}
trap cleanup_more EXIT

taskset -c 1 redis-server --port 0 --unixsocket "$TMP/redis.sock" --save "" \
	--appendonly no --dir "$TMP" --logfile "$TMP/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
taskset -c 1 python3 test/lib/http_backend.py >"$TMP/hb.out" 2>"$TMP/hb.err" &
HB_PID=$!
for _ in $(seq 100); do
	grep -q "port" "$TMP/hb.out" 2>/dev/null && redis-cli -s "$TMP/redis.sock" ping >/dev/null 2>&1 && break
	sleep 0.1
done
HB_URL="http://127.0.0.1:$(awk '{print $3}' "$TMP/hb.out")"

cat >"$TMP/game.lua" <<'LUA'
local moongate = require "moongate"
local http = require "moongate.http"
local json = require "moongate.json"
local login = require "login"
local backend = moongate.settings("game").backend
if backend then
	login.authenticate = function(hello)
		local res, err = http.post(backend .. "/login", json.encode({ name = hello.name }),
			{ headers = { ["content-type"] = "application/json" } })
		if not res then return nil, "backend: " .. err end
		if res.status ~= 200 then return nil, "backend: status " .. res.status end
		local a = json.decode(res.body)
		return a.uid, a.name
	end
end
return {}
LUA

# write_config MODE
write_config() {
	local redis="" backend=""
	case $1 in redis|both) redis="redis = { url = \"unix:$TMP/redis.sock\" }," ;; esac
	case $1 in http|both) backend="backend = \"$HB_URL\"," ;; esac
	cat >"$TMP/config.lua" <<CONF
return {
	services = { "login", "game" },
	service_path = { "$TMP", "$PWD/service" },
	secrets = "$TMP/secret",
	log = { level = "warn" },
	gate = { max_half_open = 100000 },
	$redis
	settings = { game = { $backend }, login = { players_max = 10000000, keep_s = 60 } },
}
CONF
}

out=$TMP/results
: >"$out"
for run in $(seq "$RUNS"); do
	for mode in $MODES; do
		write_config "$mode"
		redis-cli -s "$TMP/redis.sock" flushall >/dev/null
		bench_start_server "$BUILD/moongate" --listen udp://127.0.0.1:0 \
			--set net.max_conns_per_addr=0 "$TMP/config.lua"
		key=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
		line=$(timeout $((SECONDS_RUN + 60)) taskset -c 1 luajit bench/login_bench.lua \
			--url "udp://127.0.0.1:$UDP_PORT" --key "$key" --mode "$mode" \
			--seconds "$SECONDS_RUN" --inflight "$INFLIGHT" --server-pid "$SRV_PID" |
			grep '^RESULT') || { echo "login_bench: $mode run $run failed" >&2; cat "$TMP/srv.err" >&2; exit 1; }
		echo "$line run=$run"
		echo "$line" >>"$out"
		stop_server
	done
done
for mode in $MODES; do
	sel=$(grep " mode=$mode " "$out")
	echo "RESULT bench=login_median mode=$mode runs=$RUNS" \
		"logins_per_s=$(echo "$sel" | median logins_per_s)" \
		"logins_per_server_cpu_s=$(echo "$sel" | median logins_per_server_cpu_s)" \
		"p50_ms=$(echo "$sel" | median p50_ms)" "p99_ms=$(echo "$sel" | median p99_ms)" \
		"server_cpu=$(echo "$sel" | median server_cpu)" "bot_cpu=$(echo "$sel" | median bot_cpu)" \
		"failed=$(echo "$sel" | median failed)"
done
