-- The Lua runtime against a real server: services, callbacks, timers,
-- errors, config checks, and a leak check. Run by ctest through busted
-- (test/CMakeLists: busted --lua=luajit test/spec).
local T = require "moongate.test"
local json = require "moongate.json"

local BIN = os.getenv("MOONGATE_BIN") or "build/moongate"

-- A service that tells the client what happened on the server: every
-- callback appends to a log; "report" sends the log back as JSON.
local RECORDER = [[
local moongate = require "moongate"
local json = require "moongate.json"
local svc = {}
local log = {}

local function note(t) log[#log + 1] = t end

function svc.handshake(hello, peer)
	note({ cb = "handshake", hello = hello, transport = peer.transport,
	       has_addr = type(peer.addr) == "string" })
	if hello == "banned" then
		return false, "banned: test", 4107
	end
end

function svc.connect(session, hello)
	note({ cb = "connect", hello = hello, id = session:id(),
	       transport = session:transport(), addr = session:addr() })
	session.hello = hello -- a field of the session object
end

function svc.message(session, data, reliable)
	if data == "report" then
		session:send(json.encode(log))
		return true
	end
	note({ cb = "message", data = data, reliable = reliable, id = session:id(),
	       field = session.hello })
	if data == "boom" then
		error("boom requested")
	end
	if reliable then session:send(data) else session:send_unreliable(data) end
	return true
end

function svc.close(session, code, reason, remote)
	note({ cb = "close", id = session:id(), code = code, reason = reason,
	       remote = remote })
end

return svc
]]

local function report(cl)
	assert(cl.c:send("report"))
	local msg = cl:wait_message(5000)
	return json.decode(msg)
end

describe("Lua runtime", function()
	after_each(function() T.stop_all() end)

	for _, transport in ipairs({ "udp", "tcp" }) do
		it("echoes through service/echo.lua over " .. transport, function()
			local srv = T.start_server{ services = { "echo" } }
			local cl = T.connect(srv, transport, "hi")
			cl:wait_open()
			for i = 1, 100 do
				assert(cl.c:send(string.rep(string.char(i % 256), i * 7)))
			end
			T.wait(function() return #cl.messages >= 100 end, 5000, cl)
			for i = 1, 100 do
				assert.are.equal(string.rep(string.char(i % 256), i * 7), cl.messages[i])
			end
		end)
	end

	it("calls handshake, connect, message, close in order with their arguments", function()
		local srv = T.start_server{ services = { "recorder" }, inline = { recorder = RECORDER } }
		local a = T.connect(srv, "udp", "player-a")
		a:wait_open()
		assert(a.c:send("hello"))
		assert.are.equal("hello", a:wait_message())
		a.c:close(0, "bye")
		a:wait_close()
		local b = T.connect(srv, "tcp", "player-b")
		b:wait_open()
		local log
		T.wait(function()
			log = report(b)
			for _, e in ipairs(log) do
				if e.cb == "close" then return true end
			end
		end, 5000, b)
		assert.are.same({ "handshake", "connect", "message", "close", "handshake", "connect" },
			(function() local t = {} for _, e in ipairs(log) do t[#t + 1] = e.cb end return t end)())
		assert.are.equal("player-a", log[1].hello)
		assert.are.equal("udp", log[1].transport)
		assert.is_true(log[1].has_addr)
		assert.are.equal("player-a", log[2].hello)
		assert.are.equal("udp", log[2].transport)
		assert.truthy(log[2].addr:match("^127%.0%.0%.1:%d+$"))
		assert.are.equal("hello", log[3].data)
		assert.is_true(log[3].reliable)
		assert.are.equal("player-a", log[3].field)
		assert.are.equal(log[2].id, log[3].id)
		assert.are.equal(log[2].id, log[4].id)
		assert.are.equal(0, log[4].code)
		assert.are.equal("bye", log[4].reason)
		assert.is_true(log[4].remote)
		assert.are.equal("tcp", log[5].transport)
	end)

	it("keeps the session and the others working after an error, and logs it", function()
		local srv = T.start_server{ services = { "recorder" }, inline = { recorder = RECORDER } }
		local a = T.connect(srv, "udp", "a")
		local b = T.connect(srv, "udp", "b")
		a:wait_open(); b:wait_open()
		assert(a.c:send("boom"))
		srv:wait_log("service recorder: message failed, session %x+: .-boom requested", 5000)
		assert.truthy(srv:log():find("stack traceback", 1, true))
		assert(a.c:send("still here"))
		assert.are.equal("still here", a:wait_message())
		assert(b.c:send("me too"))
		assert.are.equal("me too", b:wait_message())
		assert.is_nil(a.closed)
	end)

	it("writes JSON log lines with the event's keys (log.format = json)", function()
		local srv = T.start_server{ services = { "keys" }, config = { log = { format = "json" } },
			inline = { keys = [[
local moongate = require "moongate"
return {
	message = function(session, data)
		moongate.info({ room = 7, event = "room_note" }, "note %s", data)
		if data == "boom" then error("boom requested") end
		session:send(data)
		return true
	end,
}
]] } }
		local cl = T.connect(srv, "udp", "hi")
		cl:wait_open()
		assert(cl.c:send("a\"b"))
		assert.are.equal("a\"b", cl:wait_message())
		assert(cl.c:send("boom"))
		local function decoded(pattern)
			local line = srv:wait_log(pattern, 5000)
			local ok, t = pcall(json.decode, line)
			assert(ok, "not one JSON object: " .. line)
			return t
		end
		local open = decoded('"event":"open"')
		local sid = open.session
		assert.truthy(sid:match("^%x%x%x%x%x%x%x%x$"), sid)
		assert.truthy(open.peer:match("^udp 127%.0%.0%.1:%d+$"))
		assert.are.equal("session " .. sid .. " open " .. open.peer, open.msg)
		local note = decoded('"event":"room_note"')
		assert.are.same({ "info", "keys", sid, "7", 'note a"b' },
			{ note.level, note.service, note.session, note.room, note.msg })
		local err = decoded('"event":"error"')
		assert.are.same({ "error", "keys", sid }, { err.level, err.service, err.session })
		assert.truthy(err.msg:find("boom requested", 1, true))
		-- every line of the log is one JSON object
		for line in srv:log():gmatch("[^\n]+") do
			if line:sub(1, 1) == "{" then
				assert(pcall(json.decode, line), line)
			end
		end
	end)

	it("reports a callback that runs past lua.budget_ms", function()
		local srv = T.start_server{ services = { "slow" }, config = { lua = { budget_ms = 20 } },
			inline = { slow = [[
local svc = {}
function svc.message(session, data)
	local t0 = os.clock()
	while os.clock() - t0 < 0.06 do end -- 60 ms of CPU
	session:send(data)
end
return svc
]] } }
		local cl = T.connect(srv, "udp", "x")
		cl:wait_open()
		assert(cl.c:send("slow"))
		assert.are.equal("slow", cl:wait_message())
		srv:wait_log("service slow: message took [%d.]+ ms %(budget 20 ms%), session %x+", 5000)
	end)

	it("refuses a client with the handshake's reason and code", function()
		local srv = T.start_server{ services = { "recorder" }, inline = { recorder = RECORDER } }
		local cl = T.connect(srv, "udp", "banned")
		local closed = cl:wait_close()
		assert.are.equal("banned: test", closed.reason)
		assert.are.equal(4107, closed.code)
		assert.is_falsy(cl.opened)
	end)

	it("delivers unreliable messages newest-wins through Lua", function()
		local srv = T.start_server{ services = { "echo" } }
		local cl = T.connect(srv, "udp", "x")
		cl:wait_open()
		for i = 1, 200 do
			assert(cl.c:send_unreliable(string.format("%08d", i)))
		end
		T.wait(function() return #cl.datagrams >= 150 end, 3000, cl)
		local last = 0
		for _, d in ipairs(cl.datagrams) do
			local n = tonumber(d.data or d)
			assert.is_true(n > last)
			last = n
		end
	end)

	it("fires timers and cancels them", function()
		local srv = T.start_server{ services = { "timers" }, inline = { timers = [[
local moongate = require "moongate"
local svc = {}
function svc.message(session, data)
	if data ~= "go" then return end
	local cancelled = moongate.after(30, function() session:send("cancelled one fired") end)
	assert(cancelled:cancel() == true)
	assert(cancelled:cancel() == false)
	local n = 0
	local t
	t = moongate.every(10, function(self)
		n = n + 1
		session:send("tick " .. n)
		if n == 3 then assert(self:cancel()) end
	end)
	moongate.after(60, function(h)
		assert(not h:pending())
		session:send("after " .. tostring(t:pending()))
	end)
end
return svc
]] } }
		local cl = T.connect(srv, "udp", "x")
		cl:wait_open()
		assert(cl.c:send("go"))
		T.wait(function() return #cl.messages >= 4 end, 5000, cl)
		assert.are.same({ "tick 1", "tick 2", "tick 3", "after false" }, cl.messages)
	end)

	it("refuses timers past lua.timers_max with an error that says so", function()
		local srv = T.start_server{ services = { "many" }, config = { lua = { timers_max = 3 } },
			inline = { many = [[
local moongate = require "moongate"
local svc = {}
function svc.message(session)
	local made = {}
	for i = 1, 4 do
		local ok, err = pcall(moongate.after, 60000, function() end)
		made[i] = ok and "ok" or err:match("too many timers %b()")
	end
	session:send(table.concat(made, ","))
end
return svc
]] } }
		local cl = T.connect(srv, "udp", "x")
		cl:wait_open()
		assert(cl.c:send("go"))
		assert.are.equal("ok,ok,ok,too many timers (lua.timers_max = 3)", cl:wait_message())
	end)

	it("reports a closed session object as dead, never a dangling pointer", function()
		local srv = T.start_server{ services = { "keeper" }, inline = { keeper = [[
local moongate = require "moongate"
local kept
local svc = {}
function svc.connect(session)
	if not kept then kept = session end
end
function svc.message(session, data)
	if data == "probe" then
		local ok, err = kept:send("x")
		session:send(string.format("%s %s %s", tostring(ok), tostring(err),
			tostring(kept:alive())))
	end
end
return svc
]] } }
		local a = T.connect(srv, "udp", "a")
		a:wait_open()
		a.c:close(0, "gone")
		a:wait_close()
		local b = T.connect(srv, "udp", "b")
		b:wait_open()
		assert(b.c:send("probe"))
		assert.are.equal("nil closed false", b:wait_message())
	end)
end)

describe("config", function()
	local function check(source)
		local dir = os.tmpname()
		os.remove(dir)
		assert(os.execute("mkdir -p " .. dir) == 0)
		local f = assert(io.open(dir .. "/config.lua", "w"))
		f:write(source)
		f:close()
		local p = assert(io.popen(BIN .. " --check " .. dir .. "/config.lua 2>&1; echo \"rc=$?\""))
		local out = p:read("*a")
		p:close()
		os.execute("rm -rf " .. dir)
		return out
	end

	it("names the file, the key and what was expected", function()
		local out = check('return { kcp = { interval = "fast" } }')
		assert.truthy(out:find("config.lua: kcp.interval: expected an integer in [1, 5000], got 'fast'", 1, true))
		assert.truthy(out:find("rc=2", 1, true))
		out = check('return { session = { timeout = 5 } }')
		assert.truthy(out:find("session.timeout: unknown key", 1, true))
		out = check('return { listen = { "udp://127.0.0.1:99999" } }')
		assert.truthy(out:find("port must be 0..65535", 1, true))
	end)

	it("--check loads the services and catches their errors", function()
		local out = check('return { services = { "no_such_service" } }')
		assert.truthy(out:find("service no_such_service: module 'no_such_service' not found", 1, true))
		assert.truthy(out:find("rc=2", 1, true))
		out = check('return { services = { "echo" }, service_path = { "' .. (os.getenv("PWD") or ".") .. '/service" } }')
		assert.truthy(out:find("configuration ok", 1, true))
		assert.truthy(out:find("rc=0", 1, true))
	end)
end)

describe("leaks", function()
	after_each(function() T.stop_all() end)

	it("returns Lua objects and memory to the baseline after thousands of sessions", function()
		local srv = T.start_server{ services = { "probe" }, inline = { probe = [[
local moongate = require "moongate"
local json = require "moongate.json"
local svc = {}
function svc.connect(session) session.joined = moongate.now() end
function svc.message(session, data)
	if data == "stats" then
		collectgarbage("collect"); collectgarbage("collect")
		local st = moongate.stats()
		session:send(json.encode({ kb = collectgarbage("count"), objects = st.lua_objects,
			sessions = st.lua_sessions, timers = st.timers }))
	else
		session:send(data)
	end
end
return svc
]] } }
		local watcher = T.connect(srv, "udp", "w")
		watcher:wait_open()
		local function stats()
			assert(watcher.c:send("stats"))
			return json.decode(watcher:wait_message())
		end
		local function churn(n, batch)
			for _ = 1, n / batch do
				local cls = {}
				for i = 1, batch do
					cls[i] = T.connect(srv, i % 2 == 0 and "udp" or "tcp", "c")
				end
				T.wait(function()
					for _, c in ipairs(cls) do if not c.opened then return false end end
					return true
				end, 10000, unpack(cls))
				for _, c in ipairs(cls) do
					assert(c.c:send("x"))
				end
				T.wait(function()
					for _, c in ipairs(cls) do if #c.messages < 1 then return false end end
					return true
				end, 10000, unpack(cls))
				for _, c in ipairs(cls) do c.c:close(0, "done") end
				T.wait(function()
					for _, c in ipairs(cls) do if not c.closed then return false end end
					return true
				end, 10000, unpack(cls))
				for _, c in ipairs(cls) do c:release() end
			end
		end
		local base = stats()
		churn(1000, 100)
		-- the server sees the closes a moment after the clients: wait for it
		local first
		T.wait(function() first = stats(); return first.sessions == base.sessions end, 5000, watcher)
		churn(1000, 100)
		local second
		T.wait(function() second = stats(); return second.sessions == base.sessions end, 5000, watcher)
		print(("\nleak check: start %.1f KB, %d objects; after 1000 sessions %.1f KB, %d; after 2000 %.1f KB, %d")
			:format(base.kb, base.objects, first.kb, first.objects, second.kb, second.objects))
		assert.are.equal(base.objects, first.objects)
		assert.are.equal(base.objects, second.objects)
		assert.are.equal(0, second.timers)
		-- no growth from one thousand sessions to the next; the first round
		-- may leave a table's grown capacity behind, never more than that
		assert.is_true(second.kb <= first.kb + 16, ("%.1f KB then %.1f KB"):format(first.kb, second.kb))
		assert.is_true(second.kb <= base.kb + 256, ("%.1f KB at the start, %.1f KB after"):format(base.kb, second.kb))
	end)
end)
