-- The admin console and hot reload against a real server: the console's
-- commands through `moongate admin` (srv:admin), and reloads triggered by
-- the console, SIGHUP and the file watch (lua.watch_ms). The console's own
-- limits (clients, line length, unread replies) are also in test_admin.c.
local T = require "moongate.test"

-- A service whose replies name its version, with a counter kept in
-- moongate.state: it must survive a reload. It looks its reply up through
-- the module table (M.reply), as reloadable code should.
local function counter(version)
	return ([[
local moongate = require "moongate"
local st = moongate.state("counter")
st.count = st.count or 0
local M = {}
function M.reply(n) return "%s " .. n end
function M.connect(s) s:send(string.format("id %%08x", s:id())) end
function M.message(s, data)
	st.count = st.count + 1
	s:send(M.reply(st.count))
end
return M
]]):format(version)
end

-- Console commands that wait (moongate.sleep here; redis and http the
-- same way): "slow MS" answers after MS ms; "hold" waits until "release".
local WAITING = [[
local moongate = require "moongate"
local released, holding = false, 0
moongate.command("slow", "slow MS: answers after MS ms", function(args)
	local ms = tonumber(args[1]) or 50
	local t0 = moongate.now()
	moongate.sleep(ms)
	return string.format("slept %d ms", moongate.now() - t0)
end)
moongate.command("hold", "hold: answers once released", function()
	holding = holding + 1
	local deadline = moongate.now() + 20000 -- ms
	while not released and moongate.now() < deadline do
		moongate.sleep(2)
	end
	holding = holding - 1
	if not released then return nil, "never released" end
	return "released"
end)
moongate.command("holding", "holding: commands that hold now", function()
	return tostring(holding)
end)
moongate.command("release", "release: the holding commands answer", function()
	released = true
	return "ok"
end)
moongate.command("fail_later", "fail_later: fails after a wait", function()
	moongate.sleep(1)
	error("failed after a wait")
end)
return {}
]]

local function ask(cl, text)
	cl:send(text)
	return cl:wait_message()
end

describe("admin console", function()
	local srv, cl, id
	lazy_setup(function()
		srv = T.start_server{ services = { "counter" },
			inline = { counter = counter("v1") }, admin = true }
		cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		id = cl:wait_message():match("^id (%x+)$")
	end)
	lazy_teardown(T.stop_all)

	it("prints its address at start", function()
		assert.truthy(srv.admin_port > 0)
		assert.equal("tcp://127.0.0.1:" .. srv.admin_port, srv.admin_url)
	end)

	it("help lists the commands", function()
		local ok, reply = srv:admin("help")
		assert.is_true(ok)
		for _, name in ipairs({ "help", "status", "sessions", "reload", "quit" }) do
			assert.truthy(reply:find("\n" .. name .. ":", 1, true) or
				reply:find("^" .. name .. ":"), name .. " missing in:\n" .. reply)
		end
		assert.falsy(reply:find("\n\n", 1, true))
	end)

	it("status counts the sessions", function()
		local ok, reply = srv:admin("status")
		assert.is_true(ok)
		assert.equal("1", reply:match("\nsessions (%d+)"))
		srv:wait_log("admin: status %-> ok")
	end)

	it("sessions lists a connected client's session", function()
		assert.truthy(id)
		local ok, reply = srv:admin("sessions")
		assert.is_true(ok)
		assert.truthy(reply:find(id .. " udp 127.0.0.1:", 1, true), reply)
		assert.truthy(reply:find("1 sessions", 1, true), reply)
	end)

	it("answers an unknown command with an error", function()
		local ok, reply = srv:admin("frobnicate now")
		assert.is_false(ok)
		assert.equal("error: unknown command 'frobnicate' (try help)", reply)
		srv:wait_log("admin: frobnicate now %-> error: unknown command")
	end)

	it("refuses a line of 5000 bytes", function()
		local ok, reply = srv:admin(("x"):rep(5000))
		assert.is_false(ok)
		assert.equal("error: line too long", reply)
		-- and goes on serving
		assert.is_true((srv:admin("status")))
	end)

	it("refuses a non-loopback address at start", function()
		local bin = os.getenv("MOONGATE_BIN") or "build/moongate"
		local f = assert(io.popen(bin .. " --set admin=tcp://0.0.0.0:0 --check 2>&1"))
		local out = f:read("*a")
		f:close()
		assert.truthy(out:find("admin: only a loopback address or unix:PATH; " ..
			"got 'tcp://0.0.0.0:0'", 1, true), out)
	end)
end)

describe("admin commands that wait", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "waiting" },
			inline = { waiting = WAITING }, admin = true }
	end)
	lazy_teardown(T.stop_all)

	it("answer when the command returns", function()
		local t0 = T.now_ms()
		local ok, reply = srv:admin("slow 50")
		assert.is_true(ok)
		local ms = tonumber(reply:match("^slept (%d+) ms$"))
		assert.truthy(ms and ms >= 50, reply)
		assert.is_true(T.now_ms() - t0 >= 50)
		srv:wait_log("admin: slow 50 %-> ok")
		ok, reply = srv:admin("fail_later")
		assert.is_false(ok)
		assert.truthy(reply:match("^error: command fail_later failed: .*failed after a wait"), reply)
	end)

	it("let another console client be answered meanwhile", function()
		-- a first client's command waits (a `moongate admin` in the
		-- background), until a second client releases it
		local bin = srv.bin
		local sh = ("%q admin --timeout 10000 %q hold 2>&1; echo \"exit:$?\""):format(
			bin, srv.admin_url)
		local f = assert(io.popen(sh, "r"))
		T.wait(function()
			local ok, n = srv:admin("holding")
			return ok and n == "1"
		end, 5000)
		local ok, reply = srv:admin("status")
		assert.is_true(ok)
		assert.truthy(reply:match("^uptime_s %d+"), reply)
		ok, reply = srv:admin("stats admin")
		assert.is_true(ok)
		assert.truthy(reply:find("admin.waiting 1", 1, true), reply)
		assert.is_true((srv:admin("release")))
		local out = f:read("*a")
		f:close()
		assert.equal("released\nexit:0\n", out)
		ok, reply = srv:admin("holding")
		assert.equal("0", reply)
	end)
end)

describe("hot reload", function()
	local srv, cl
	lazy_setup(function()
		srv = T.start_server{ services = { "counter" },
			inline = { counter = counter("v1") }, admin = true }
		cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		cl:wait_message() -- its id
	end)
	lazy_teardown(T.stop_all)

	it("reloads from the console: same session, new code, state kept", function()
		assert.equal("v1 1", ask(cl, "a"))
		srv:write_service("counter", counter("v2"))
		local ok, reply = srv:admin("reload")
		assert.is_true(ok)
		assert.equal("reloaded counter; 0 unchanged", reply)
		assert.equal("v2 2", ask(cl, "b"))
		srv:wait_log("reload: counter reloaded from .*counter%.lua")
		-- nothing changed since: nothing to do
		ok, reply = srv:admin("reload")
		assert.is_true(ok)
		assert.equal("1 unchanged", reply)
	end)

	it("refuses a syntax error, naming the file and line; the old code runs", function()
		local before = ask(cl, "c")
		local n = tonumber(before:match("^v2 (%d+)$"))
		assert.truthy(n, before)
		srv:write_service("counter", "local M = {}\nfunction M.message(s)\n\ts:send(\"v9\"\nend\nreturn M\n")
		local ok, reply = srv:admin("reload")
		assert.is_false(ok)
		assert.truthy(reply:match("^error: refused counter: .*counter%.lua:%d+: "), reply)
		srv:wait_log("reload: counter refused, the old code keeps running: .*counter%.lua:%d+:")
		srv:wait_log("admin: reload %-> error: refused counter")
		assert.equal("v2 " .. (n + 1), ask(cl, "d"))
		-- the refused version is not tried again until the file changes
		ok, reply = srv:admin("reload")
		assert.is_true(ok)
		assert.equal("1 unchanged", reply)
	end)

	it("reloads on SIGHUP", function()
		srv:write_service("counter", counter("v3"))
		assert.equal(0, srv:hup())
		srv:wait_log("reload %(SIGHUP%): reloaded counter")
		assert.truthy(ask(cl, "e"):match("^v3 %d+$"))
		local ok, reply = srv:admin("status")
		assert.is_true(ok)
		assert.equal("2", reply:match("\nreloads (%d+)"))
		assert.equal("1", reply:match("\nreloads_refused (%d+)"))
	end)

	it("refuses a version whose reload(old) hook raises", function()
		local v4 = counter("v4"):gsub("return M\n$",
			"function M.reload(old) assert(old.reply, 'no old code'); error('not now') end\nreturn M\n")
		srv:write_service("counter", v4)
		local ok, reply = srv:admin("reload")
		assert.is_false(ok)
		assert.truthy(reply:match("^error: refused counter: reload hook: .*not now"), reply)
		assert.truthy(ask(cl, "f"):match("^v3 %d+$"))
	end)
end)

describe("file watch", function()
	local srv, cl
	lazy_setup(function()
		srv = T.start_server{ services = { "counter" },
			inline = { counter = counter("v1") },
			config = { lua = { watch_ms = 100 } } }
		cl = assert(T.connect(srv, "tcp"))
		cl:wait_open()
		cl:wait_message()
	end)
	lazy_teardown(T.stop_all)

	it("picks a changed file up within watch_ms", function()
		assert.equal("v1 1", ask(cl, "a"))
		srv:write_service("counter", counter("w2"))
		srv:wait_log("reload: counter reloaded", 3000)
		srv:wait_log("reload %(watch%): reloaded counter", 3000)
		assert.equal("w2 2", ask(cl, "b"))
		-- only changes are logged: no line for the quiet turns
		local n = 0
		for line in srv:log():gmatch("[^\n]+") do
			if line:match("^%S+ %a+ reload") then
				n = n + 1
			end
		end
		assert.equal(2, n, T.tail(srv:log(), 20))
	end)
end)

describe("admin on a Unix socket", function()
	lazy_teardown(T.stop_all)

	-- (test_admin.c checks that the file is removed at exit)
	it("is relative to config.lua", function()
		local srv = T.start_server{ services = { "echo" },
			config = { admin = "unix:moongate.admin" } }
		local path = srv.dir .. "/moongate.admin"
		assert.equal("unix:" .. path, srv.admin_url)
		local ok, reply = srv:admin("sessions")
		assert.is_true(ok)
		assert.equal("0 sessions", reply)
		assert.equal(0, (srv:stop()))
		assert.has_error(function() srv:admin("status", 500) end)
	end)
end)

-- issue 16: an operator could not close a session from the console, and
-- uptime_s counted from the first console command
describe("console close and uptime", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "counter" },
			inline = { counter = counter("v1") }, admin = true }
	end)
	lazy_teardown(T.stop_all)

	it("status counts uptime_s from the server's start, not from the first command", function()
		-- no command yet; let 2 s pass on the clock (no sleep: a bounded wait)
		local t0 = T.now_ms()
		T.wait(function() return T.now_ms() - t0 >= 2100 end, 3000)
		local ok, reply = srv:admin("status")
		assert.is_true(ok, reply)
		local up = tonumber(reply:match("^uptime_s (%d+)"))
		assert.truthy(up and up >= 2 and up < 60, reply)
	end)

	it("closes a session by its id, with the reason, and says what went wrong", function()
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		local id = cl:wait_message():match("^id (%x+)$")
		local other = assert(T.connect(srv, "tcp"))
		other:wait_open()
		local ok, reply = srv:admin("close " .. id .. " cheating, see ticket 7")
		assert.is_true(ok, reply)
		assert.equal("closing " .. id .. ": 4000 cheating, see ticket 7", reply)
		assert.same({ code = 4000, reason = "cheating, see ticket 7", remote = true },
			cl:wait_close())
		-- the default reason; an id with 0x
		local oid = other:wait_message():match("^id (%x+)$")
		ok, reply = srv:admin("close 0x" .. oid)
		assert.is_true(ok, reply)
		assert.equal("closed by an operator", other:wait_close().reason)
		-- no such session, no id
		ok, reply = srv:admin("close " .. id)
		assert.is_false(ok)
		assert.equal("error: no session " .. id, reply)
		ok, reply = srv:admin("close")
		assert.is_false(ok)
		assert.equal("error: usage: close ID [reason] (ID in hex, as sessions shows it)", reply)
	end)
end)
