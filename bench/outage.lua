-- bench/outage.lua - the workload of resume_bench.lua and
-- reconnect_bench.lua: players sending a small reliable message every
-- period_ms through moongate-netem to an echo service, a full network
-- outage per round, and what each player saw after it.
--
-- outage.run(B, o) -> figures        o (all required unless marked):
--   mode          "resume": one session per player for the whole run;
--                 resume on, the client knocks every reconnect_ms while
--                 offline and keeps sending (the sends queue).
--                 "reconnect": resume off (resume_grace_ms=0); when a
--                 session closes, the player connects again at once and
--                 every retry_ms while that fails, logs in again, and
--                 sends nothing while it has no session.
--   transport     "udp", "tcp" or "auto" (both, through netem)
--   clients, rounds, steady_ms, period_ms, size
--   outage_ms, outage_spread_ms   round r's outage lasts outage_ms +
--                 outage_spread_ms x (r - 0.5) / rounds
--   reconnect_ms  (resume)   retry_ms (reconnect)
--   outage        "kill": netem blackholes UDP and TCP both ways, refuses
--                 new TCP connections and resets the live ones (a network
--                 change: every connection dies, nothing gets through);
--                 "blackhole": the blackhole only (TCP connections stay
--                 up, their bytes held)
--   recover_ms    a round ends when every player had an echo after the
--                 restore, or after this long (the late ones count as
--                 unrecovered)
--   drain_ms      at the end, how long to wait for the last echoes
--   seed          netem's seed
--   udp_idle, udp_max   netem's --udp-idle (s) and --udp-max
--
-- Every player logs in once it is open: it sends "login", the service
-- answers "welcome", and only then do its messages flow. Resume time of a
-- player in a round: its first echo received after the restore (netem's
-- "clear" acknowledged) minus the restore, in ms.

local outage = {}

-- The service: "login" is answered with "welcome", anything else echoed.
local SERVICE = [[
local svc = {}
function svc.message(session, data, reliable)
	if data == "login" then
		session:send("welcome")
		return true
	end
	if reliable then session:send(data) else session:send_unreliable(data) end
	return true
end
return svc
]]

-- verbose: the service also logs its session events (in the server log,
-- kept with MOONGATE_TEST_KEEP=1)
local SERVICE_LOG = [[
local moongate = require "moongate"
for _, name in ipairs{ "offline", "resume", "path" } do
	svc[name] = function(session, transport, addr)
		moongate.info("bench: %s %d %s %s", name, session:id(), transport or "", addr or "")
	end
end
function svc.connect(session, hello)
	moongate.info("bench: connect %d %s", session:id(), hello)
end
]]

function outage.run(B, o)
	local T = B.T
	local netem = require "moongate.netem"
	local resume = o.mode == "resume"
	assert(resume or o.mode == "reconnect", "mode: resume or reconnect")
	assert(resume or o.transport == "tcp", "reconnect runs over tcp")

	local args = { "--set", "session.timeout_ms=2000",
		"--set", "session.heartbeat_ms=500",
		"--set", "session.resume_grace_ms=" .. (resume and 30000 or 0),
		"--set", "shutdown_ms=500" }
	local src = SERVICE
	if o.verbose ~= 0 then
		src = src:gsub("return svc\n$", function() return SERVICE_LOG .. "return svc\n" end)
	end
	local srv = T.start_server{ services = { "bench_echo" },
		inline = { bench_echo = src }, args = args }
	-- every knock and every reconnection comes from a fresh socket, so a
	-- new netem mapping: netem's default bound (1024) is reached after
	-- about 9 rounds of 20 clients, and its 60 s idle expiry frees them
	-- too late; a NAT-like 10 s expiry and a larger bound avoid that
	local n = netem.start{ server = srv, seed = o.seed,
		args = { "--udp-idle", o.udp_idle, "--udp-max", o.udp_max } }
	local url = o.transport == "auto" and
		("udp://127.0.0.1:%d,tcp://127.0.0.1:%d"):format(n.udp_port, n.tcp_port) or
		n:url(o.transport)
	local copts = resume and { reconnect_ms = o.reconnect_ms } or
		{ handshake_timeout_ms = 2000 }

	local rcvbuf0 = B.rcvbuf_errors()
	local period_us = o.period_ms * 1000
	local players = {}
	local cur -- the current round: { r, t_out, t_restore } (ms)
	local sending = true
	local ev_count = { open = 0, close = 0, offline = 0, resume = 0, path = 0 }
	local closes = {} -- unexpected closes (resume mode), as text

	local function connect(p, now)
		p.attempts = p.attempts + 1
		p.last_attempt = now
		local cl, err = T.connect(url, nil, "player" .. p.i, copts)
		if not cl then
			p.state, p.retry_at = "down", now + o.retry_ms
			p.connect_err = err
			return
		end
		p.cl, p.ev_i, p.state = cl, 0, "connecting"
	end

	for i = 1, o.clients do
		local p = { i = i, flow = B.flow(i, o.size), attempts = 0, rounds = {},
			skipped = 0, send_fail = 0 }
		players[i] = p
		connect(p, T.now_ms())
	end

	local function round_of(p)
		return cur and p.rounds[cur.r]
	end

	local function handle(p, ev, now)
		ev_count[ev.type] = (ev_count[ev.type] or 0) + 1
		local rd = round_of(p)
		if ev.type == "open" then
			p.state = "login"
			assert(p.cl:send("login"))
			if rd and cur.t_restore then
				rd.open_ms = rd.open_ms or now - cur.t_restore
			end
		elseif ev.type == "message" then
			if ev.data == "welcome" then
				p.state = "play"
				p.next_send = p.next_send or now * 1000 + (p.i - 1) * period_us / o.clients
				if rd and cur.t_restore then
					rd.login_ms = rd.login_ms or now - cur.t_restore
				end
				return
			end
			local seq = p.flow:echo(ev.data, now * 1000)
			assert(seq, "not an echo: " .. ev.data)
			if rd and cur.t_restore and not rd.first_ms then
				rd.first_ms = now - cur.t_restore
			end
		elseif ev.type == "offline" then
			if rd then rd.offline = true end
		elseif ev.type == "resume" then
			if rd then
				rd.resume = true
				if cur.t_restore then
					rd.resume_ms = rd.resume_ms or now - cur.t_restore
				end
			end
		elseif ev.type == "close" then
			local was_open = p.state == "login" or p.state == "play"
			if resume then
				closes[#closes + 1] = ("player %d: %d %s"):format(p.i, ev.code, ev.reason)
				p.state = "closed"
			else
				if rd then
					rd.closes = (rd.closes or 0) + 1
				end
				p.state = "down"
				p.retry_at = was_open and now or p.last_attempt + o.retry_ms
			end
			p.cl:release()
			p.cl = nil
			return "changed"
		end
	end

	-- One turn of the loop: events, then reconnects and sends that are due.
	local function tick()
		local now = T.now_ms()
		local changed = false
		for _, p in ipairs(players) do
			if p.cl then
				local evs = p.cl.events
				while p.cl and p.ev_i < #evs do
					p.ev_i = p.ev_i + 1
					if handle(p, evs[p.ev_i], now) == "changed" then
						changed = true
					end
				end
			end
		end
		local t = now * 1000
		for _, p in ipairs(players) do
			if p.state == "down" and p.retry_at <= now and sending then
				connect(p, now)
				changed = true
			end
			if sending and p.next_send and p.next_send <= t then
				if p.state == "play" then
					local s, seq = p.flow:payload(t)
					if p.cl:send(s) then
						p.flow:sent(seq, t)
					else
						p.send_fail = p.send_fail + 1
					end
				else
					p.skipped = p.skipped + 1
				end
				p.next_send = p.next_send + period_us
				if p.next_send < t then
					p.next_send = t + period_us
				end
			end
		end
		return changed
	end

	-- the next send or connection attempt (us)
	local function due()
		local d
		for _, p in ipairs(players) do
			local t = p.state == "down" and sending and p.retry_at * 1000 or
				sending and p.next_send
			if t and (not d or t < d) then
				d = t
			end
		end
		return d
	end

	local function run_until(done, ms)
		B.run(function()
			local changed = tick()
			if done() then
				return true
			end
			return changed and "changed" or false
		end, players, ms, due)
	end

	-- everyone logged in
	run_until(function()
		for _, p in ipairs(players) do
			if p.state ~= "play" then return false end
		end
		return true
	end, 20000)
	B.log("%s %s: %d players logged in (server udp %s tcp %s, netem udp %s tcp %s)", o.mode,
		o.transport, #players, srv.udp, srv.tcp, n.udp_port, n.tcp_port)

	local unrecovered = 0
	for r = 1, o.rounds do
		local t = T.now_ms()
		run_until(function() return T.now_ms() >= t + o.steady_ms end, o.steady_ms + 10000)
		-- the outage
		n:set{ blackhole = 1 }
		if o.outage == "kill" then
			n:refuse(true)
			n:reset()
		end
		cur = { r = r, t_out = T.now_ms() }
		for _, p in ipairs(players) do
			p.rounds[r] = {}
		end
		-- outage_ms plus a slice of outage_spread_ms that sweeps the rounds
		-- over it: the restore falls at every phase of the clients'
		-- reconnect timers, not always at the same one
		cur.len = o.outage_ms + o.outage_spread_ms * (r - 0.5) / o.rounds
		run_until(function() return T.now_ms() >= cur.t_out + cur.len end, cur.len + 10000)
		n:clear()
		cur.t_restore = T.now_ms()
		run_until(function()
			if T.now_ms() >= cur.t_restore + o.recover_ms then
				return true
			end
			for _, p in ipairs(players) do
				if not p.rounds[r].first_ms then return false end
			end
			return true
		end, o.recover_ms + 10000)
		local firsts, late = {}, 0
		for _, p in ipairs(players) do
			local rd = p.rounds[r]
			if rd.first_ms then
				firsts[#firsts + 1] = rd.first_ms
			else
				late = late + 1
			end
		end
		unrecovered = unrecovered + late
		if o.verbose ~= 0 then
			for _, p in ipairs(players) do
				local rd = p.rounds[r]
				B.log("  player %d: open %s login %s resume %s first echo %s ms, closes %s, offline %s",
					p.i, B.fmt(rd.open_ms), B.fmt(rd.login_ms), B.fmt(rd.resume_ms),
					B.fmt(rd.first_ms), tostring(rd.closes), tostring(rd.offline))
			end
		end
		local pr = B.percentiles(firsts)
		B.log("round %d/%d: outage %.0f ms, first echo after restore p50 %s max %s ms, %d not recovered",
			r, o.rounds, cur.t_restore - cur.t_out, B.fmt(pr.p50), B.fmt(pr.max), late)
	end

	-- the last echoes: in resume mode every message; in reconnect mode
	-- those sent on the connection each player has now
	sending = false
	local t_drain = T.now_ms()
	run_until(function()
		if T.now_ms() >= t_drain + o.drain_ms then
			return true
		end
		for _, p in ipairs(players) do
			local f = p.flow
			if resume and f.nrecv < f.nsent then return false end
			if not resume and p.state == "play" and f.seq > 0 and not f.got[f.seq] then
				return false
			end
		end
		return true
	end, o.drain_ms + 10000)

	-- figures
	local fig = { first = {}, event = {}, gap = {}, lost = 0, dups = 0, ooo = 0, sent = 0,
		recv = 0, skipped = 0, send_fail = 0, unrecovered = unrecovered,
		offline_missing = 0, resume_missing = 0, closes = #closes, ev = ev_count,
		client_rounds = o.clients * o.rounds, reconnects = 0 }
	for _, p in ipairs(players) do
		local f = p.flow
		fig.sent = fig.sent + f.nsent
		fig.recv = fig.recv + f.nrecv
		fig.lost = fig.lost + f:lost()
		fig.dups = fig.dups + f.dups
		fig.ooo = fig.ooo + f.ooo
		fig.skipped = fig.skipped + p.skipped
		fig.send_fail = fig.send_fail + p.send_fail
		fig.reconnects = fig.reconnects + p.attempts - 1
		for r = 1, o.rounds do
			local rd = p.rounds[r]
			if rd.first_ms then
				fig.first[#fig.first + 1] = rd.first_ms
			end
			local ev_ms = resume and rd.resume_ms or rd.login_ms
			if ev_ms then
				fig.event[#fig.event + 1] = ev_ms
				if rd.first_ms then
					fig.gap[#fig.gap + 1] = rd.first_ms - ev_ms
				end
			end
			if resume then
				if not rd.offline then fig.offline_missing = fig.offline_missing + 1 end
				if not rd.resume then fig.resume_missing = fig.resume_missing + 1 end
			end
		end
	end
	for _, c in ipairs(closes) do
		io.stderr:write("unexpected close: ", c, "\n")
	end
	-- the server's view, from its log (core/main.c logs both)
	fig.server_offlines = select(2, srv:log():gsub(" offline: waiting", ""))
	fig.server_resumes = select(2, srv:log():gsub(" resumed on ", ""))
	fig.netem_stats = n:stats()
	fig.rcvbuf_errors = B.rcvbuf_errors() - rcvbuf0
	T.stop_all()
	return fig
end

-- The RESULT fields of a run.
function outage.fields(B, name, o, fig)
	local p = B.percentiles(fig.first)
	local e = B.percentiles(fig.event)
	local fields = {
		{ "bench", name }, { "mode", o.mode }, { "transport", o.transport },
		{ "outage", o.outage }, { "clients", o.clients }, { "rounds", o.rounds },
	}
	if o.mode == "resume" then
		fields[#fields + 1] = { "reconnect_ms", o.reconnect_ms }
	else
		fields[#fields + 1] = { "retry_ms", o.retry_ms }
	end
	for _, kv in ipairs{
		{ "samples", p.n },
		{ "p50_ms", B.fmt(p.p50) }, { "p99_ms", B.fmt(p.p99) }, { "max_ms", B.fmt(p.max) },
		{ o.mode == "resume" and "resume_ev_p50_ms" or "login_p50_ms", B.fmt(e.p50) },
		{ o.mode == "resume" and "resume_ev_max_ms" or "login_max_ms", B.fmt(e.max) },
		{ o.mode == "resume" and "resume_to_echo_max_ms" or "login_to_echo_max_ms",
			B.fmt(B.percentiles(fig.gap).max) },
		{ "unrecovered", fig.unrecovered },
		{ "sent", fig.sent }, { "echoed", fig.recv }, { "lost", fig.lost },
		{ "dup", fig.dups }, { "ooo", fig.ooo },
	} do
		fields[#fields + 1] = kv
	end
	if o.mode == "resume" then
		fields[#fields + 1] = { "offline_missing", fig.offline_missing }
		fields[#fields + 1] = { "resume_missing", fig.resume_missing }
		fields[#fields + 1] = { "closed", fig.closes }
		fields[#fields + 1] = { "client_offlines", fig.ev.offline or 0 }
		fields[#fields + 1] = { "client_resumes", fig.ev.resume or 0 }
		fields[#fields + 1] = { "server_offlines", fig.server_offlines }
		fields[#fields + 1] = { "server_resumes", fig.server_resumes }
	else
		fields[#fields + 1] = { "not_sent", fig.skipped }
		fields[#fields + 1] = { "connect_attempts", fig.reconnects }
	end
	fields[#fields + 1] = { "send_fail", fig.send_fail }
	fields[#fields + 1] = { "netem_udp_refused", fig.netem_stats.udp_mappings_refused }
	fields[#fields + 1] = { "udp_rcvbuf_errors", fig.rcvbuf_errors }
	return fields
end

return outage
