-- bench/reconnect_bench.lua - the same outage as resume_bench.lua, over
-- plain TCP without resume, as games do today: the session closes, the
-- client connects again and logs in again (issue 5; docs/BENCHMARKS.md,
-- "Resume, reconnect and FEC").
--
--   luajit bench/reconnect_bench.lua           # reconnect, then resume over TCP
--   luajit bench/reconnect_bench.lua modes=reconnect rounds=3 retry_ms=100
--
-- Server: session.resume_grace_ms=0 (a lost connection closes the
-- session), timeout_ms=2000, heartbeat_ms=500. Each player connects over
-- tcp:// through moongate-netem, sends "login" and waits for "welcome",
-- then sends a reliable message of `size` bytes every `period_ms`. When
-- its session closes it connects again at once, then every `retry_ms`
-- while the connection or the handshake fails, logs in again, and goes
-- on; while it has no session it sends nothing (counted in not_sent).
-- Rounds and outage as in resume_bench.lua (outage=kill: netem resets
-- every TCP connection, refuses new ones and blackholes the rest).
--
-- Recovery time: the first echo after the restore (on the new
-- connection, after the login) minus the restore. lost: messages sent on
-- a connection that died before their echo came back.
--
-- With modes=reconnect,resume (the default) the resume run is
-- resume_bench.lua's over TCP only with the same workload and outage, and
-- reconnect_ms = retry_ms (250) so that both retry as often; a table puts
-- both side by side. One RESULT line per mode, then
--   RESULT bench=reconnect_vs_resume ... (the two p50/p99/max and losses)

local B = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/netbench.lua")
local outage = dofile(B.dir .. "/outage.lua")

local o = B.options({ clients = 20, rounds = 10, steady_ms = 2000, outage_ms = 4000,
	outage_spread_ms = 1000, period_ms = 50, size = 32, retry_ms = 250,
	reconnect_ms = 250, outage = "kill", recover_ms = 10000, drain_ms = 10000,
	seed = 5, udp_idle = 10, udp_max = 4096, modes = "reconnect,resume", verbose = 0 }, arg)
o.transport = "tcp"

local runs, exit = {}, 0
for mode in o.modes:gmatch("[^,]+") do
	o.mode = mode
	local fig = outage.run(B, o)
	B.result(outage.fields(B, mode == "resume" and "resume" or "reconnect", o, fig))
	runs[mode] = fig
	if fig.dups + fig.ooo + fig.unrecovered > 0 or
		(mode == "resume" and fig.lost + fig.offline_missing + fig.resume_missing + fig.closes > 0) then
		exit = 1
	end
end

if runs.reconnect and runs.resume then
	local a, b = B.percentiles(runs.reconnect.first), B.percentiles(runs.resume.first)
	local la, lb = B.percentiles(runs.reconnect.event), B.percentiles(runs.resume.event)
	print()
	print(("after a %d ms outage (+ 0..%d ms), TCP, %d clients x %d rounds, a message every %d ms"):format(
		o.outage_ms, o.outage_spread_ms, o.clients, o.rounds, o.period_ms))
	print("| | first echo p50 / p99 / max ms | login or resume event p50 / max ms | sent | lost | dup | not sent |")
	print("| --- | --- | --- | --- | --- | --- | --- |")
	local function row(name, p, l, fig)
		print(("| %s | %s / %s / %s | %s / %s | %d | %d | %d | %d |"):format(name, B.fmt(p.p50),
			B.fmt(p.p99), B.fmt(p.max), B.fmt(l.p50), B.fmt(l.max), fig.sent, fig.lost,
			fig.dups, fig.skipped))
	end
	row(("reconnect + login (retry %d ms)"):format(o.retry_ms), a, la, runs.reconnect)
	row(("resume (reconnect_ms %d)"):format(o.reconnect_ms), b, lb, runs.resume)
	print()
	B.result{ { "bench", "reconnect_vs_resume" }, { "transport", "tcp" }, { "outage", o.outage },
		{ "clients", o.clients }, { "rounds", o.rounds },
		{ "reconnect_p50_ms", B.fmt(a.p50) }, { "reconnect_p99_ms", B.fmt(a.p99) },
		{ "reconnect_max_ms", B.fmt(a.max) }, { "reconnect_lost", runs.reconnect.lost },
		{ "reconnect_not_sent", runs.reconnect.skipped },
		{ "resume_p50_ms", B.fmt(b.p50) }, { "resume_p99_ms", B.fmt(b.p99) },
		{ "resume_max_ms", B.fmt(b.max) }, { "resume_lost", runs.resume.lost },
		{ "resume_dup", runs.resume.dups } }
end
os.exit(exit)
