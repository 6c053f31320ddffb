-- Callbacks that wait (issue 16): every session and timer callback runs in
-- a coroutine; moongate.sleep waits without stopping the server; one
-- session's callbacks stay in order and never overlap; a session that
-- closes while its callback waits gets no further callback but close, and
-- nothing is left behind. Run by ctest through busted.
local T = require "moongate.test"
local json = require "moongate.json"

-- "waiter": every message is a command; "report" answers with what the
-- service saw (and the runtime's counters), without waiting.
local WAITER = [[
local moongate = require "moongate"
local json = require "moongate.json"
local svc = {}
local notes = {}          -- what happened, in order
local running = {}        -- sid -> callbacks of it running now
local overlaps = 0        -- a callback started while another of its session ran
local flag = false

local function note(s) notes[#notes + 1] = s end

-- "wait MS accept|refuse|error": the handshake sleeps, then answers;
-- "hold": it waits until another session sets the flag
local handshakes = {}     -- hello -> handshake callbacks for it
local hs_waiting = 0
function svc.handshake(hello, info)
	handshakes[hello] = (handshakes[hello] or 0) + 1
	local ms, what = hello:match("^wait (%d+) (%a+)")
	if ms then
		hs_waiting = hs_waiting + 1
		moongate.sleep(tonumber(ms))
		hs_waiting = hs_waiting - 1
		if what == "refuse" then
			return false, "refused after " .. ms .. " ms (" .. info.transport .. ")", 4001
		elseif what == "error" then
			error("failed in a handshake after a wait")
		end
	elseif hello == "hold" then
		hs_waiting = hs_waiting + 1
		local deadline = moongate.now() + 20000 -- ms
		while not flag do
			assert(moongate.now() < deadline, "the flag never came")
			moongate.sleep(2)
		end
		hs_waiting = hs_waiting - 1
	end
end

function svc.connect(session, hello)
	if hello == "slow login" then
		moongate.sleep(150)
		session.ready = true
		note("connect done " .. session:id())
	end
end

local cmds = {}

-- waits until another session's callback sets the flag: only possible
-- when a waiting callback does not stop the others
function cmds.wait_flag(session)
	local deadline = moongate.now() + 20000 -- ms
	while not flag do
		assert(moongate.now() < deadline, "the flag never came")
		moongate.sleep(2)
	end
	session:send("flag seen")
end

function cmds.set_flag(session)
	flag = true
	session:send("flag set")
end

function cmds.seq(session, n)
	note("start " .. n)
	-- a different wait for each, so that a later one would finish first
	-- if they overlapped
	moongate.sleep((20 - tonumber(n) % 20) * 2)
	note("end " .. n)
end

function cmds.block(session)
	note("block " .. session:id())
	moongate.sleep(600000)
	note("block woke " .. session:id()) -- never: the session closes
end

function cmds.after(session, what)
	note("after " .. what .. " " .. session:id())
end

function cmds.fail_after(session)
	moongate.sleep(1)
	error("failed after a wait")
end

function cmds.yield(session)
	coroutine.yield()
end

-- a wait whose yield raises (inside table.sort's comparator, a C call):
-- the callback catches it, and what that wait arranged is undone before
-- its next wait, which works
function cmds.sort_sleep(session)
	local before = moongate.server_stats().lua.timers
	local ok, err = pcall(table.sort, { 3, 2, 1 }, function(a, b)
		moongate.sleep(60000)
		return a < b
	end)
	local mid = moongate.server_stats().lua.timers
	moongate.sleep(1)
	session:send(json.encode({ ok = ok, err = tostring(err), before = before, mid = mid,
		after = moongate.server_stats().lua.timers }))
end

function cmds.ready(session)
	session:send(session.ready and "ready" or "not ready")
end

function cmds.ping(session)
	session:send("pong")
end

function cmds.gc(session)
	collectgarbage()
	collectgarbage()
	session:send("gc")
end

local ticks, slept = 0, 0
function cmds.timers(session)
	local t
	t = moongate.every(5, function()
		ticks = ticks + 1
		moongate.sleep(30)
		slept = slept + 1
		if slept >= 3 then t:cancel() end
	end)
	moongate.after(0, function()
		moongate.sleep(5)
		note("after timer slept")
	end)
end

function cmds.report(session)
	local st = moongate.server_stats().lua
	session:send(json.encode({ notes = notes, overlaps = overlaps,
		ticks = ticks, slept = slept, stats = st,
		objects = moongate.stats().lua_objects, handshakes = handshakes,
		hs_waiting = hs_waiting, gate = moongate.server_stats().gate }))
end

function svc.message(session, data)
	local id = session:id()
	if (running[id] or 0) > 0 then overlaps = overlaps + 1 end
	running[id] = (running[id] or 0) + 1
	local cmd, arg = data:match("^(%S+)%s*(.*)$")
	local ok, err = pcall(cmds[cmd], session, arg)
	running[id] = running[id] - 1
	if not ok then error(err, 0) end
	return true
end

function svc.close(session, code, reason)
	running[session:id()] = nil
	note("close " .. session:id())
end

return svc
]]

local function start(config)
	return T.start_server{ services = { "waiter" }, inline = { waiter = WAITER },
		config = config }
end

local function report(cl, ...)
	local before = #cl.messages
	assert(cl:send("report"))
	T.wait(function() return #cl.messages > before end, 5000, cl, ...)
	return json.decode(cl.messages[before + 1])
end

local function has(list, s)
	for _, v in ipairs(list) do
		if v == s then return true end
	end
	return false
end

describe("callbacks that wait", function()
	after_each(function() T.stop_all() end)

	it("let the other sessions go on while one waits", function()
		local srv = start()
		local a = T.connect(srv, "udp")
		local b = T.connect(srv, "tcp")
		a:wait_open()
		b:wait_open()
		-- a's callback waits until b's sets the flag: were a waiting
		-- callback to hold the loop, b's message would never run
		assert(a:send("wait_flag"))
		T.wait(function() return report(b, a).stats.waiting >= 1 end, 5000, a, b)
		assert(b:send("set_flag"))
		T.wait(function() return #a.messages >= 1 end, 5000, a, b)
		assert.are.equal("flag seen", a.messages[1])
		assert.is_true(has(b.messages, "flag set"))
	end)

	it("keep one session's callbacks in order, never overlapping", function()
		local srv = start()
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		for i = 1, 20 do
			assert(cl:send("seq " .. i))
		end
		-- report waits behind the twenty: it sees them all
		local r = report(cl)
		local want = {}
		for i = 1, 20 do
			want[#want + 1] = "start " .. i
			want[#want + 1] = "end " .. i
		end
		assert.are.same(want, r.notes)
		assert.are.equal(0, r.overlaps)
		assert.is_true(r.stats.queued >= 10, "events queued: " .. r.stats.queued)
		assert.are.equal(0, r.stats.waiting)
	end)

	it("hold a session's messages until its connect callback has waited and returned", function()
		local srv = start()
		local cl = T.connect(srv, "udp", "slow login")
		cl:wait_open()
		assert(cl:send("ready"))
		T.wait(function() return #cl.messages >= 1 end, 5000, cl)
		assert.are.equal("ready", cl.messages[1])
	end)

	it("drop what waits when the session closes: no callback but close, nothing left", function()
		local srv = start()
		local watcher = T.connect(srv, "tcp")
		watcher:wait_open()
		local base = report(watcher)
		local cls = {}
		for i = 1, 50 do
			local cl = T.connect(srv, i % 2 == 0 and "tcp" or "udp")
			cls[i] = cl
		end
		T.wait_open(cls, 5000)
		for _, cl in ipairs(cls) do
			assert(cl:send("block"))
			assert(cl:send("after 1"))
			assert(cl:send("after 2"))
		end
		T.wait(function()
			local st = report(watcher, unpack(cls)).stats
			return st.waiting >= 50 and st.queued >= base.stats.queued + 100
		end, 5000, unpack(cls))
		for _, cl in ipairs(cls) do
			cl:close()
		end
		T.wait(function()
			local r = report(watcher, unpack(cls))
			return r.stats.waiting == 0 and r.stats.cancelled >= base.stats.cancelled + 50
		end, 5000, unpack(cls))
		for _, cl in ipairs(cls) do cl:release() end
		assert(watcher:send("gc"))
		T.wait(function() return has(watcher.messages, "gc") end, 5000, watcher)
		local r = report(watcher)
		local closes, blocks = 0, 0
		for _, n in ipairs(r.notes) do
			assert.is_nil(n:match("^block woke"), n)
			assert.is_nil(n:match("^after"), n) -- queued behind the wait: dropped
			if n:match("^close ") then closes = closes + 1 end
			if n:match("^block ") then blocks = blocks + 1 end
		end
		assert.are.equal(50, blocks)
		assert.are.equal(50, closes)
		assert.is_true(r.stats.dropped >= base.stats.dropped + 100)
		-- the sleeps' timers went with their tasks; the objects were collected
		assert.are.equal(0, r.stats.timers)
		assert.are.equal(base.objects, r.objects)
	end)

	it("let timer callbacks wait, skipping a repeating timer's firings meanwhile", function()
		local srv = start()
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert(cl:send("timers"))
		local r
		T.wait(function()
			r = report(cl)
			return r.slept >= 3 and has(r.notes, "after timer slept")
		end, 5000, cl)
		assert.are.equal(3, r.ticks) -- no second firing while one waited
		assert.is_true(r.stats.skipped >= 3, "skipped " .. r.stats.skipped)
	end)

	it("log an error after a wait with its traceback, and go on", function()
		local srv = start()
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert(cl:send("fail_after"))
		assert(cl:send("ping"))
		T.wait(function() return has(cl.messages, "pong") end, 5000, cl)
		local line = srv:wait_log("service waiter: message failed, session %x+: .-failed after a wait", 5000)
		assert.truthy(line:find("waiter.lua:%d+"), line)
		assert(cl:send("yield"))
		srv:wait_log("a callback yielded without waiting on anything", 5000)
		assert(cl:send("ping"))
		T.wait(function() return #cl.messages >= 2 end, 5000, cl)
		assert.are.equal("pong", cl.messages[2])
	end)

	it("undo a wait whose yield raised across a C call, and wait again", function()
		local srv = start()
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert(cl:send("sort_sleep"))
		local r = json.decode(cl:wait_message())
		assert.is_false(r.ok)
		assert.truthy(r.err:find("yield", 1, true), r.err)
		assert.are.equal(r.before, r.after) -- the 60 s sleep's timer is gone
		assert(cl:send("ping"))
		assert.are.equal("pong", cl:wait_message())
		assert.are.equal(0, report(cl).stats.waiting)
	end)

	it("let the handshake wait, then accept or refuse", function()
		local srv = start()
		local a = T.connect(srv, "udp", "wait 50 accept")
		local b = T.connect(srv, "tcp", "wait 50 refuse")
		local c = T.connect(srv, "udp", "wait 10 error")
		a:wait_open()
		b:wait_close()
		assert.are.equal(4001, b.closed.code)
		assert.are.equal("refused after 50 ms (tcp)", b.closed.reason)
		c:wait_close() -- an error after the wait fails closed, as at once
		assert.are.equal(4, c.closed.code)
		assert.are.equal("server error", c.closed.reason)
		srv:wait_log("service waiter: handshake failed.-failed in a handshake after a wait", 5000)
		assert(a:send("ping"))
		T.wait(function() return has(a.messages, "pong") end, 5000, a)
		local r = report(a)
		assert.are.equal(1, r.handshakes["wait 50 accept"])
		assert.are.equal(0, r.gate.pending)
		assert.are.equal(0, r.stats.waiting)
	end)

	it("serve other sessions while a handshake waits on something slow", function()
		local srv = start()
		local a = T.connect(srv, "udp")
		a:wait_open()
		local b = T.connect(srv, "udp", "hold")
		-- b's handshake waits until a's callback sets the flag: a waiting
		-- handshake holds neither the loop nor the other sessions
		T.wait(function()
			local r = report(a, b)
			return r.hs_waiting == 1 and r.gate.pending == 1
		end, 5000, a, b)
		assert.is_false(b.opened)
		for i = 1, 5 do
			assert(a:send("ping"))
		end
		T.wait(function() return #a.messages >= 7 end, 5000, a, b)
		assert.is_false(b.opened)
		assert(a:send("set_flag"))
		b:wait_open()
		assert(b:send("ping"))
		T.wait(function() return has(b.messages, "pong") end, 5000, b)
		assert.are.equal(1, report(b).handshakes.hold)
	end)

	it("ask once while the client retries its INIT, on UDP and then TCP too", function()
		local srv = start()
		-- UDP first; no answer within fallback_ms (1000): TCP too. The
		-- handshake answers after 1500 ms: INITs again at 250, 500 and
		-- 1000 ms, then the HELLO on TCP, all while it waits
		local url = srv:url("udp") .. "," .. srv:url("tcp")
		local cl = T.connect(url, nil, "wait 1500 accept", { server_key = srv.key })
		cl:wait_open(5000)
		assert(cl:send("ping"))
		T.wait(function() return has(cl.messages, "pong") end, 5000, cl)
		local r = report(cl)
		assert.are.equal(1, r.handshakes["wait 1500 accept"])
		assert.is_true(r.gate.hellos >= 5, "handshake packets: " .. r.gate.hellos)
		assert.are.equal(1, r.gate.created)
		assert.are.equal(0, r.gate.pending)
	end)

	it("refuse a handshake whose verdict does not come within gate.pending_ms", function()
		local srv = start({ gate = { pending_ms = 200 } })
		local cl = T.connect(srv, "udp", "wait 1000 accept")
		cl:wait_close()
		assert.are.equal(6, cl.closed.code)
		assert.are.equal("handshake policy timeout", cl.closed.reason)
		local w = T.connect(srv, "tcp")
		w:wait_open()
		local r
		T.wait(function()
			r = report(w)
			return r.hs_waiting == 0 -- the late verdict was ignored
		end, 5000, w)
		assert.are.equal(1, r.gate.pending_timeouts)
		assert.are.equal(1, r.gate.created) -- w's only
	end)

	it("refuse one more waiting handshake past gate.pending_max", function()
		local srv = start({ gate = { pending_max = 1 } })
		local a = T.connect(srv, "udp", "hold")
		local w = T.connect(srv, "tcp")
		w:wait_open()
		T.wait(function() return report(w, a).gate.pending == 1 end, 5000, w, a)
		local b = T.connect(srv, "udp", "wait 10 accept")
		b:wait_close()
		assert.are.equal(4, b.closed.code)
		assert.truthy(b.closed.reason:find("^server busy"), b.closed.reason)
		assert.truthy(b.closed.reason:find("gate.pending_max", 1, true), b.closed.reason)
		assert(w:send("set_flag"))
		a:wait_open()
	end)

	it("close a session whose events pile up past lua.queue_max behind a wait", function()
		local srv = start({ lua = { queue_max = 4 } })
		local cl = T.connect(srv, "tcp")
		cl:wait_open()
		assert(cl:send("block"))
		for i = 1, 10 do
			assert(cl:send("after " .. i))
		end
		cl:wait_close()
		assert.are.equal(3, cl.closed.code)
		assert.truthy(cl.closed.reason:find("lua.queue_max", 1, true), cl.closed.reason)
	end)
end)

-- A raw KCP session closes at once when a callback closes it (no CLOSE
-- handshake): its CLOSE event comes while the lane of its waiting callback
-- is being worked on. The server must survive it (under ASan: no report).
describe("callbacks that wait on raw sessions", function()
	local P = require "moongate.posix"
	local ffi = require "ffi"
	local bit = require "bit"
	after_each(function() T.stop_all() end)

	local function kcp_push(conv, sn, data)
		local n = 24 + #data
		local b = ffi.new("uint8_t[?]", n)
		local function put32(o, v)
			for i = 0, 3 do b[o + i] = bit.band(bit.rshift(v, 8 * i), 0xff) end
		end
		put32(0, conv)
		b[4], b[5], b[6], b[7] = 81, 0, 128, 0
		put32(8, 0)
		put32(12, sn)
		put32(16, 0)
		put32(20, #data)
		ffi.copy(b + 24, data, #data)
		return b, n
	end

	it("survive a close of the session inside a callback that waited", function()
		local RAW = [[
local moongate = require "moongate"
return {
	connect = function(s, hello)
		moongate.sleep(5)
		if s:addr():match(":(%d+)$") and tonumber(s:addr():match(":(%d+)$")) % 2 == 0 then
			return false, "refused after a wait" -- closes the raw session at once
		end
	end,
	message = function(s, d)
		moongate.sleep(5)
		s:close() -- at once, from a callback that waited
		moongate.sleep(5) -- never runs on: the session is gone
		error("ran after the close")
	end,
}
]]
		local srv = T.start_server{ transports = { "udp" }, services = { "raw" },
			inline = { raw = RAW }, args = { "--listen", "raw://127.0.0.1:0" } }
		local dst = P.sockaddr_in(srv.raw)
		local fds = {}
		for i = 1, 20 do
			local fd = P.socket(P.AF_INET, P.SOCK_DGRAM + P.SOCK_CLOEXEC, 0)
			fds[i] = fd
			for sn = 0, 2 do
				local pkt, len = kcp_push(0x1000 + i, sn, "m" .. sn)
				P.sendto(fd, pkt, len, 0, dst, P.SOCKADDR_IN_LEN)
			end
		end
		srv:wait_log("refused after a wait", 5000)
		-- the server goes on: an ordinary session echoes nothing here but
		-- opens and is answered by the runtime's stats
		T.wait(function()
			return #srv:log():gsub("[^\n]", "") > 0 and
				select(2, srv:log():gsub("closed by server", "")) >= 20
		end, 5000)
		for _, fd in ipairs(fds) do P.close(fd) end
		assert.is_nil(srv:log():find("ran after the close", 1, true))
		local cl = T.connect(srv, "udp", "still up")
		cl:wait_open()
	end)
end)
