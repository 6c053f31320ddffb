-- bench/resume_bench.lua - how long a session takes to come back after a
-- full network outage (issue 5; docs/BENCHMARKS.md, "Resume, reconnect and
-- FEC").
--
--   luajit bench/resume_bench.lua                         # UDP, then TCP
--   luajit bench/resume_bench.lua transports=udp reconnect_ms=250 rounds=3
--   CLIENTS=50 luajit bench/resume_bench.lua
--
-- A real server (moongate.test) with an echo service and
-- session.timeout_ms=2000, heartbeat_ms=500, resume_grace_ms=30000;
-- moongate-netem between it and `clients` clients (moongate.client), each
-- sending a reliable message of `size` bytes every `period_ms`. Each
-- round: `steady_ms` of traffic, then an outage (netem drops every UDP
-- datagram, refuses new TCP connections and resets the live ones: "kill";
-- outage=blackhole only blackholes) of outage_ms + outage_spread_ms x
-- (r - 0.5) / rounds, so that the restore falls at every phase of the
-- clients' knock timers; then netem is cleared. Resume time: a client's
-- first echo after the clear, minus the clear. transports: any of udp,
-- tcp, auto (UDP first, TCP beside it). One line per transport:
--
--   RESULT bench=resume mode=resume transport=udp ... p50_ms= p99_ms= max_ms=
--          lost= dup= offline_missing= resume_missing= ...
--
-- lost (sent and never echoed), dup, ooo (echoes out of order),
-- offline_missing / resume_missing (client-rounds without that event)
-- and closed must all be 0.

local B = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/netbench.lua")
local outage = dofile(B.dir .. "/outage.lua")

local o = B.options({ clients = 20, rounds = 10, steady_ms = 2000, outage_ms = 4000, outage_spread_ms = 1000,
	period_ms = 50, size = 32, reconnect_ms = 500, outage = "kill",
	recover_ms = 10000, drain_ms = 10000, seed = 5, udp_idle = 10, udp_max = 4096, transports = "udp,tcp", verbose = 0 }, arg)
o.mode = "resume"

local exit = 0
for t in o.transports:gmatch("[^,]+") do
	o.transport = t
	local fig = outage.run(B, o)
	B.result(outage.fields(B, "resume", o, fig))
	if fig.lost + fig.dups + fig.ooo + fig.offline_missing + fig.resume_missing +
		fig.closes + fig.unrecovered > 0 then
		exit = 1
	end
end
os.exit(exit)
