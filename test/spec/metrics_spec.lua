-- The operators' endpoint (issue 18): /metrics in Prometheus text and
-- /status.json from the server's loop, scraped while the network is broken
-- on purpose (moongate-netem): loss raises retransmissions and the loss
-- histogram, a forged packet raises auth failures, a refused login raises
-- its close code, sessions and rooms are counted.
local T = require "moongate.test"
local netem = require "moongate.netem"
local json = require "moongate.json"

local GAME = [[
local svc = {}
function svc.message(session, data)
	if data == "id" then
		session:send(tostring(session:id()))
		return true
	end
	if data:sub(1, 1) == "e" then
		session:send(data)
		return true
	end
end
return svc
]]

local function start()
	return T.start_server{ services = { "game", "login", "room" }, inline = { game = GAME },
		config = { metrics = "127.0.0.1:0", session = { heartbeat_ms = 200 } } }
end

describe("metrics", function()
	after_each(function() T.stop_all() end)

	it("serve Prometheus text, the status page and its JSON; 404 and 405 otherwise", function()
		local srv = start()
		local text = srv:scrape()
		-- well formed: every sample after its family's HELP and TYPE
		local typed = {}
		for line in text:gmatch("[^\n]+") do
			local fam = line:match("^# TYPE (%S+) %a+$")
			if fam then
				typed[fam] = true
			elseif not line:match("^# HELP ") then
				local name = line:match("^([%w_:]+)")
				assert.is_truthy(name, line)
				local fam2 = name:gsub("_bucket$", ""):gsub("_sum$", ""):gsub("_count$", "")
				assert.is_true(typed[name] or typed[fam2] or false, "no TYPE before " .. line)
			end
		end
		assert.are.equal(1, srv:metric("moongate_info"))
		assert.is_number(srv:metric("moongate_gate_in_packets_total"))
		local status, body = T.http_get(srv.metrics_port, "/")
		assert.are.equal(200, status)
		assert.truthy(body:find("<title>moongate status</title>", 1, true))
		status, body = T.http_get(srv.metrics_port, "/status.js")
		assert.are.equal(200, status)
		assert.truthy(body:find("status.json", 1, true))
		status, body = T.http_get(srv.metrics_port, "/status.json")
		assert.are.equal(200, status)
		local s = json.decode(body)
		assert.are.equal(0, s.sessions.open)
		assert.is_number(s.counters["gate.in_packets"])
		assert.are.equal(404, (T.http_get(srv.metrics_port, "/nope")))
	end)

	it("show the same figures on the admin console: top", function()
		local srv = T.start_server{ services = { "login", "room" }, admin = true,
			config = { metrics = "127.0.0.1:0" } }
		local cl = T.connect(srv, "udp", json.encode({ v = 1, name = "bo" }))
		cl:wait_login()
		assert(cl:send(json.encode({ op = "create", mode = "relay", capacity = 2 })))
		cl:wait_op("joined")
		local ok, text = srv:admin("top")
		assert.is_true(ok, text)
		assert.truthy(text:find("sessions open 1 ", 1, true), text)
		assert.truthy(text:find("lua login.connect runs 1 ", 1, true), text)
		assert.truthy(text:find('moongate_rooms{mode=relay} 1', 1, true), text)
		assert.truthy(text:find('moongate_relay_states_in_total{mode=relay} 0', 1, true), text)
		-- a second member: states relayed between them (the fan-out)
		local room = srv:metric("moongate_rooms", 'mode="relay"') and
			json.decode(cl.messages[#cl.messages]).room
		local cl2 = T.connect(srv, "udp", json.encode({ v = 1, name = "di" }))
		cl2:wait_login()
		assert(cl2:send(json.encode({ op = "join", mode = "relay" })))
		cl2:wait_op("joined")
		T.wait(function()
			cl:send_unreliable("state of bo")
			cl2:send_unreliable("state of di")
			return #cl2.datagrams > 0 and #cl.datagrams > 0
		end, 5000, cl, cl2)
		assert.is_true(srv:metric("moongate_relay_states_in_total", 'mode="relay"') >= 2)
		assert.is_true(srv:metric("moongate_relay_states_out_total", 'mode="relay"') >= 2)
		assert.is_truthy(room)
		assert.truthy(text:find("rtt_ms p50", 1, true), text)
	end)

	it("time Redis calls and HTTP requests", function()
		local rd = T.start_redis()
		local hb = T.start_http_backend()
		local GAME2 = [[
local http = require "moongate.http"
local svc = {}
function svc.message(session, data)
	if data == "get" then
		local res = http.get(moongate_backend .. "/echo")
		session:send(res and tostring(res.status) or "failed")
		return true
	end
end
return svc
]]
		local srv = T.start_server{ services = { "login", "game" },
			inline = { game = "moongate_backend = " .. string.format("%q", hb.url) .. "\n" .. GAME2 },
			config = { metrics = "127.0.0.1:0", redis = { url = rd.url } } }
		local cl = T.connect(srv, "udp", json.encode({ v = 1, name = "cy" }))
		cl:wait_login()
		assert.is_true(srv:metric("moongate_redis_call_seconds_count") >= 3)
		assert.is_true(srv:metric("moongate_redis_call_seconds_bucket", 'le="+Inf"') >= 3)
		assert(cl:send("get"))
		cl:wait_message()
		assert.are.equal(1, srv:metric("moongate_http_request_seconds_count"))
	end)

	it("move as the network and the peers say", function()
		local srv = start()
		local n = netem.start{ server = srv, seed = 11 }
		local base_retrans = srv:metric("moongate_retransmissions_total")
		local cl = T.connect(n, "udp", json.encode({ v = 1, name = "ann" }), { server_key = srv.key })
		cl:wait_login()
		-- sessions by state
		T.wait(function() return srv:metric("moongate_sessions", 'state="open"') == 1 end, 5000, cl)
		assert.are.equal(1, srv:metric("moongate_players", 'state="connected"'))
		-- 20% loss both ways: 300 echoes need retransmissions
		n:set({ loss = 0.2 })
		local pad = string.rep("x", 400)
		for round = 1, 30 do -- many datagrams each way: some are lost
			for i = 1, 10 do
				assert(cl:send("e" .. (round * 10 + i) .. pad))
			end
			cl:step(5)
		end
		T.wait(function()
			local got = 0
			for _, m in ipairs(cl.messages) do
				if m:match("^e%d+x") then got = got + 1 end
			end
			return got == 300
		end, 30000, cl)
		n:clear()
		assert.is_true(srv:metric("moongate_retransmissions_total") > base_retrans)
		assert.is_true(srv:metric("moongate_session_loss_ratio_count") >= 1)
		assert.is_true(srv:metric("moongate_session_loss_ratio_sum") > 0)
		-- (the server measures RTT with its own pings: heartbeat_ms, 200 here)
		T.wait(function()
			return srv:metric("moongate_session_rtt_seconds_count") >= 1
		end, 5000, cl)
		assert.is_true(srv:metric("moongate_messages_in_total") >= 300)
		-- a forged packet for the live session: an authentication failure
		local before = srv:metric("moongate_gate_auth_failures_total")
		assert(cl:send("id"))
		local sid = tonumber(cl:wait(function()
			for _, m in ipairs(cl.messages) do
				if m:match("^%d+$") then return m end
			end
		end, 5000, "the session id"))
		local pkt = string.char(0x10, sid % 256, math.floor(sid / 256) % 256,
			math.floor(sid / 65536) % 256, math.floor(sid / 16777216) % 256,
			0xff, 0xff, 0xff, 0x0f) .. string.rep("\170", 40) -- (a pn ahead: not a replay)
		local evil = netem.udp_socket()
		evil:send(srv.udp, pkt)
		T.wait(function()
			return srv:metric("moongate_gate_auth_failures_total") > before
		end, 5000, cl)
		evil:close()
		-- a refused login: its close code counted
		local closes = srv:metric("moongate_session_closes_total", 'code="4112"') or 0
		local bad = T.connect(srv, "udp", json.encode({ v = 1, cookie = "2.00..1.1.00" }))
		bad:wait_close(5000)
		assert.are.equal(4112, bad.closed.code)
		T.wait(function()
			return (srv:metric("moongate_session_closes_total", 'code="4112"') or 0) > closes
		end, 5000, cl)
		-- rooms by mode, tick durations, players
		assert(cl:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		cl:wait_op("joined")
		T.wait(function()
			return srv:metric("moongate_rooms", 'mode="lockstep"') == 1
				and (srv:metric("moongate_room_tick_seconds_count", 'mode="lockstep"') or 0) > 5
		end, 5000, cl)
		assert.are.equal(1, srv:metric("moongate_room_members", 'mode="lockstep"'))
		assert.is_true(srv:metric("moongate_lua_callback_runs_total",
			'service="login",callback="connect"') >= 1)
		local s = json.decode(select(2, T.http_get(srv.metrics_port, "/status.json")))
		assert.are.equal(1, s.sessions.open)
		assert.is_true(s.rtt_ms.n >= 1)
		assert.is_true(#s.services > 0)
	end)
end)

describe("log.file", function()
	after_each(function() T.stop_all() end)

	local function read(path)
		local f = io.open(path, "rb")
		if not f then return "" end
		local s = f:read("*a")
		f:close()
		return s
	end

	for _, workers in ipairs({ 1, 2 }) do
		it("goes to the file and is reopened on SIGUSR1 (log rotation), workers " .. workers, function()
			local path = os.tmpname()
			os.remove(path)
			local srv = T.start_server{ services = { "echo" },
				config = { workers = workers, log = { file = path } } }
			T.wait(function() return read(path):find("server key", 1, true) end, 5000)
			assert.are.equal("", srv:log():gsub("[^\n]*development[^\n]*\n", ""))
			-- rotation: the file moved away, SIGUSR1, a new file
			assert(os.rename(path, path .. ".1"))
			T.kill(srv.pid, 10) -- SIGUSR1
			T.wait(function()
				local s = read(path)
				local _, n = s:gsub("log: reopened", "")
				return n >= workers -- (with workers: the supervisor and each worker)
			end, 5000)
			local cl = T.connect(srv, "udp", "hi")
			cl:wait_open()
			T.wait(function() return read(path):find("open udp 127.0.0.1", 1, true) end, 5000, cl)
			assert.is_nil(read(path .. ".1"):find("open udp 127.0.0.1", 1, true))
			srv:stop()
			os.remove(path)
			os.remove(path .. ".1")
		end)
	end
end)
