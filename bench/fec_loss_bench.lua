-- bench/fec_loss_bench.lua - FEC on a real lossy link: echo latency and
-- bytes on the wire with FEC off and on (issue 5; docs/BENCHMARKS.md,
-- "Resume, reconnect and FEC").
--
--   luajit bench/fec_loss_bench.lua
--   luajit bench/fec_loss_bench.lua loss=0.05 seconds=10 fec=4,2
--
-- One server (moongate.test) with two UDP listeners: a plain one and one
-- with ?fec=K,M. Each gets its own moongate-netem with the same settings
-- (loss each way, a fixed delay each way, the same seed) and `clients`
-- clients; the two sets run at the same time, in the same process, so
-- that the machine's noise falls on both alike (together=0 runs them one
-- after the other). Every client sends a reliable message of `size` bytes
-- every `period_ms` for `seconds`, echoed by the server; latency is the
-- echo's arrival minus the send. Bytes: netem's udp_up_bytes and
-- udp_down_bytes (what it forwarded, after the loss) over the traffic
-- phase, heartbeats and retransmissions included.
--
--   RESULT bench=fec_loss loss=0.1 delay_ms=20 fec=8,2 ... p50_off_ms= p99_off_ms=
--          max_off_ms= p50_on_ms= p99_on_ms= max_on_ms= up_ratio= down_ratio=
--          bytes_ratio= lost= dup= ooo=
--
-- bytes_ratio: both directions' bytes with FEC over without.

local B = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/netbench.lua")
local T = B.T
local netem = require "moongate.netem"

local o = B.options({ clients = 20, seconds = 20, period_ms = 20, size = 100,
	loss = 0.1, delay = 20, fec = "8,2", seed = 7, together = 1,
	drain_ms = 10000 }, arg)

local srv = T.start_server{ services = { "echo" }, transports = { "udp" },
	args = { "--listen", "udp://127.0.0.1:0?fec=" .. o.fec,
		"--set", "shutdown_ms=500" } }
-- --listen order is the listeners' order: the plain one first
assert(#srv.listening == 2 and srv.listening[1][1] == "udp" and
	srv.listening[2][1] == "udp", "two UDP listeners expected")

local rcvbuf0 = B.rcvbuf_errors()
local sets = {}
for i, name in ipairs{ "off", "on" } do
	sets[i] = { name = name, port = srv.listening[i][3], players = {} }
end

local function start_set(s)
	s.n = netem.start{ udp = s.port, seed = o.seed,
		set = { loss = o.loss, delay = o.delay } }
	for i = 1, o.clients do
		local id = (s.name == "on" and 1000 or 0) + i
		s.players[i] = { i = i, flow = B.flow(id, o.size),
			cl = assert(T.connect(s.n:udp_url(), nil, "c" .. id)), ev_i = 0 }
	end
end

-- Run the sets (one or both) from open to the last echo.
local function run(list)
	local all = {}
	for _, s in ipairs(list) do
		start_set(s)
		for _, p in ipairs(s.players) do
			all[#all + 1] = p
		end
	end
	local period = o.period_ms * 1000
	B.run(function()
		for _, p in ipairs(all) do
			if not p.cl.opened then return false end
		end
		return true
	end, all, 30000)
	local t0 = T.now_ms()
	for _, s in ipairs(list) do
		s.before = s.n:stats()
	end
	for k, p in ipairs(all) do
		p.next_send = t0 * 1000 + (k - 1) * period / #all
		p.ev_i = #p.cl.events
	end
	local t_end = t0 + o.seconds * 1000
	local sending = true
	local function tick()
		local now = T.now_ms() * 1000
		for _, p in ipairs(all) do
			local evs = p.cl.events
			while p.ev_i < #evs do
				p.ev_i = p.ev_i + 1
				local ev = evs[p.ev_i]
				if ev.type == "message" then
					assert(p.flow:echo(ev.data, now), "not an echo")
				elseif ev.type == "close" then
					error(("client %d closed: %d %s"):format(p.flow.id, ev.code, ev.reason))
				end
			end
			if sending and p.next_send <= now then
				local s, seq = p.flow:payload(now)
				assert(p.cl:send(s))
				p.flow:sent(seq, now)
				p.next_send = p.next_send + period
				if p.next_send < now then
					p.next_send = now + period
				end
			end
		end
	end
	local function due()
		if not sending then return nil end
		local d
		for _, p in ipairs(all) do
			if not d or p.next_send < d then d = p.next_send end
		end
		return d
	end
	B.run(function()
		tick()
		if sending and T.now_ms() >= t_end then
			sending = false
			t_end = T.now_ms() + o.drain_ms
		end
		if sending then return false end
		if T.now_ms() >= t_end then return true end
		for _, p in ipairs(all) do
			if p.flow.nrecv < p.flow.nsent then return false end
		end
		return true
	end, all, o.seconds * 1000 + o.drain_ms + 10000, due)
	for _, s in ipairs(list) do
		s.after = s.n:stats()
		s.wall = (T.now_ms() - t0) / 1000
		B.log("fec %s: done", s.name)
	end
end

if o.together ~= 0 then
	run(sets)
else
	run{ sets[1] }
	run{ sets[2] }
end

local fields = { { "bench", "fec_loss" }, { "loss", o.loss }, { "delay_ms", o.delay },
	{ "fec", o.fec }, { "clients", o.clients }, { "seconds", o.seconds },
	{ "period_ms", o.period_ms }, { "size", o.size }, { "seed", o.seed },
	{ "together", o.together } }
local bad = 0
local total = {}
for _, s in ipairs(sets) do
	local lat, sent, recv, lost, dups, ooo = {}, 0, 0, 0, 0, 0
	for _, p in ipairs(s.players) do
		for _, x in ipairs(p.flow.lat) do lat[#lat + 1] = x end
		sent = sent + p.flow.nsent
		recv = recv + p.flow.nrecv
		lost = lost + p.flow:lost()
		dups = dups + p.flow.dups
		ooo = ooo + p.flow.ooo
	end
	bad = bad + lost + dups + ooo
	local pr = B.percentiles(lat)
	local d = {}
	for _, k in ipairs{ "udp_up_bytes", "udp_down_bytes", "udp_up_sent", "udp_down_sent",
		"udp_up_dropped", "udp_down_dropped" } do
		d[k] = s.after[k] - s.before[k]
	end
	s.d = d
	for _, kv in ipairs{
		{ "p50_" .. s.name .. "_ms", B.fmt(pr.p50) }, { "p99_" .. s.name .. "_ms", B.fmt(pr.p99) },
		{ "max_" .. s.name .. "_ms", B.fmt(pr.max) }, { "mean_" .. s.name .. "_ms", B.fmt(pr.mean) },
		{ "sent_" .. s.name, sent }, { "echoed_" .. s.name, recv },
		{ "up_bytes_" .. s.name, d.udp_up_bytes }, { "down_bytes_" .. s.name, d.udp_down_bytes },
		{ "up_dgrams_" .. s.name, d.udp_up_sent + d.udp_up_dropped },
		{ "down_dgrams_" .. s.name, d.udp_down_sent + d.udp_down_dropped },
	} do
		fields[#fields + 1] = kv
	end
	total.lost = (total.lost or 0) + lost
	total.dups = (total.dups or 0) + dups
	total.ooo = (total.ooo or 0) + ooo
end
local off, on = sets[1].d, sets[2].d
local function ratio(a, b) return b > 0 and ("%.3f"):format(a / b) or "n/a" end
fields[#fields + 1] = { "up_ratio", ratio(on.udp_up_bytes, off.udp_up_bytes) }
fields[#fields + 1] = { "down_ratio", ratio(on.udp_down_bytes, off.udp_down_bytes) }
fields[#fields + 1] = { "bytes_ratio", ratio(on.udp_up_bytes + on.udp_down_bytes,
	off.udp_up_bytes + off.udp_down_bytes) }
fields[#fields + 1] = { "lost", total.lost }
fields[#fields + 1] = { "dup", total.dups }
fields[#fields + 1] = { "ooo", total.ooo }
fields[#fields + 1] = { "udp_rcvbuf_errors", B.rcvbuf_errors() - rcvbuf0 }
T.stop_all()
B.result(fields)
os.exit(bad == 0 and 0 or 1)
