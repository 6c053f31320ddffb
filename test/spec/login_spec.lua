-- The shipped services handshake, login and room (docs/SERVICES.md): the
-- handshake policy, login cookies, and a player coming back to its seat.
local T = require "moongate.test"
local json = require "moongate.json"

-- The next message equal to s, skipping others.
local function next_is(cl, s, ms)
	while true do
		local m = cl:wait_message(ms or 5000)
		if m == s then
			return m
		end
	end
end

local hello = function(t) t.v = t.v or 1; return json.encode(t) end

-- A room logic that keeps a counter in the player's data and logs callbacks.
local counter = [[
local moongate = require "moongate"
local M = { tick_rate = 20 }
function M.message(room, p, data)
	if data == "inc" then
		p.data.n = (p.data.n or 0) + 1
		room:send(p, "n=" .. p.data.n)
	end
end
function M.away(room, p) moongate.info("logic: away %s", p.name) end
function M.back(room, p) moongate.info("logic: back %s", p.name) end
function M.leave(room, p, why) moongate.info("logic: leave %s %s", p.name, why) end
return M
]]

describe("handshake, login and a held seat", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login", "room" },
			inline = { counter = counter },
			config = {
				session = { timeout_ms = 400, heartbeat_ms = 100, resume_grace_ms = 300 },
				settings = {
					handshake = { version_min = 2, version_max = 3, ban = { "127.0.0.9" } },
					login = { cookie_ttl_s = 3600 },
					room = { modes = { counter = "counter" }, hold_ms = 10000 },
				},
			},
		}
	end)
	lazy_teardown(T.stop_all)

	it("refuses an old or a new protocol version with the reason", function()
		local cl = T.connect(srv, "udp", hello{ v = 1, name = "old" })
		local c = cl:wait_close()
		assert.are.equal(4100, c.code)
		assert.matches("client too old: protocol 1, the server needs 2..3", c.reason, 1, true)
		cl = T.connect(srv, "tcp", hello{ v = 4, name = "new" })
		assert.matches("client too new", cl:wait_close().reason, 1, true)
		cl = T.connect(srv, "udp", "not json")
		assert.are.equal(4100, cl:wait_close().code)
	end)

	it("logs in by name, comes back with the cookie to the held seat and its data", function()
		local a = T.connect(srv, "udp", hello{ v = 2, name = "ann" })
		local login = a:wait_op("login")
		assert.are.equal("dev:ann", login.uid)
		assert.is_false(login.restored)
		assert.matches("^2%.%x+%.%x*%.%d+%.%d+%.%x+$", login.cookie)
		assert(a:send(json.encode{ op = "create", mode = "counter", capacity = 4 }))
		local joined = a:wait_op("joined")
		local b = T.connect(srv, "tcp", hello{ v = 2, name = "bob" })
		b:wait_op("login")
		assert(b:send(json.encode{ op = "join", room = joined.room }))
		assert.are.equal(2, b:wait_op("joined").seat)
		assert(a:send("inc"))
		next_is(a, "n=1")

		-- ann's app dies: no goodbye. The session goes offline, then expires;
		-- the seat is held and bob is told.
		a:release()
		local ev = b:wait_op("member")
		assert.are.same({ "away", login.id }, { ev.event, ev.id })
		T.wait(function()
			return srv:log():find('session %x+ closed by server: code 9, "expired"')
		end, 5000, b)
		assert.truthy(srv:log():find("logic: away ann", 1, true))

		-- she logs in again with the cookie: same uid and id, same seat, same data
		local a2 = T.connect(srv, "udp", hello{ v = 2, cookie = login.cookie })
		local again = a2:wait_op("login")
		assert.is_true(again.restored)
		assert.are.same({ login.uid, login.id }, { again.uid, again.id })
		local rejoined = a2:wait_op("joined")
		assert.is_true(rejoined.rejoined)
		assert.are.same({ joined.room, joined.seat }, { rejoined.room, rejoined.seat })
		assert.are.equal("back", b:wait_op("member").event)
		assert(a2:send("inc"))
		next_is(a2, "n=2")
		srv:wait_log("logic: back ann", 1000)
		assert.is_nil(srv:log():find("logic: leave ann", 1, true))

		-- the new cookie works too, and the older one is still valid
		assert.are_not.equal(login.cookie, again.cookie)
		a2:close()
		a2:wait_close()
		b:close()
		b:wait_close()
	end)

	it("refuses forged, malformed, expired and logged-out cookies with a reason", function()
		local a = T.connect(srv, "udp", hello{ v = 2, name = "cat" })
		local cookie = a:wait_op("login").cookie
		-- forged: one digit of the MAC changed; another uid with the same MAC
		local last = cookie:sub(-1)
		local forged = cookie:sub(1, -2) .. (last == "0" and "1" or "0")
		local cl = T.connect(srv, "udp", hello{ v = 2, cookie = forged })
		assert.are.same({ 4112, "bad cookie" }, { cl:wait_close().code, cl.closed.reason })
		local other, n = cookie:gsub("^2%.(%x+)", "2.%1" .. "00")
		assert.are.equal(1, n)
		cl = T.connect(srv, "tcp", hello{ v = 2, cookie = other })
		assert.are.equal("bad cookie", cl:wait_close().reason)
		cl = T.connect(srv, "tcp", hello{ v = 2, cookie = "garbage" })
		assert.are.equal("bad cookie", cl:wait_close().reason)

		-- logout revokes every cookie issued until then
		assert(a:send(json.encode{ op = "logout" }))
		a:wait_op("logout")
		assert.are.equal("logged out", a:wait_close().reason)
		cl = T.connect(srv, "udp", hello{ v = 2, cookie = cookie })
		local c = cl:wait_close()
		assert.are.equal(4112, c.code)
		assert.matches("cookie revoked", c.reason, 1, true)
		-- a fresh login works and its cookie too
		local a3 = T.connect(srv, "udp", hello{ v = 2, name = "cat" })
		local fresh = a3:wait_op("login").cookie
		a3:close()
		a3:wait_close()
		cl = T.connect(srv, "udp", hello{ v = 2, cookie = fresh })
		assert.is_true(cl:wait_op("login").restored)
		cl:close()
		cl:wait_close()
	end)

	it("moves a player who logs in twice, closing the older session", function()
		local a = T.connect(srv, "udp", hello{ v = 2, name = "dan" })
		local cookie = a:wait_op("login").cookie
		local a2 = T.connect(srv, "tcp", hello{ v = 2, cookie = cookie })
		a2:wait_op("login")
		local c = a:wait_close()
		assert.are.same({ 4113, "logged in elsewhere" }, { c.code, c.reason })
		a2:close()
		a2:wait_close()
	end)
end)

describe("cookie expiry and handshake limits", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login" },
			config = { settings = {
				login = { cookie_ttl_s = 0 }, -- every cookie is born expired
				handshake = { per_ip_max = 2, rate = 1000, burst = 1000 },
			} },
		}
	end)
	lazy_teardown(T.stop_all)

	it("refuses an expired cookie", function()
		local a = T.connect(srv, "udp", hello{ name = "eve" })
		local cookie = a:wait_op("login").cookie
		local cl = T.connect(srv, "udp", hello{ cookie = cookie })
		local c = cl:wait_close()
		assert.are.equal(4112, c.code)
		assert.matches("cookie expired", c.reason, 1, true)
		a:close()
		a:wait_close()
	end)

	it("refuses a third session from one address", function()
		local a = T.connect(srv, "udp", hello{ name = "f1" })
		local b = T.connect(srv, "udp", hello{ name = "f2" })
		a:wait_op("login")
		b:wait_op("login")
		local c = T.connect(srv, "udp", hello{ name = "f3" })
		local closed = c:wait_close()
		assert.are.same({ 4102, "too many sessions from your address" }, { closed.code, closed.reason })
		a:close()
		a:wait_close()
		-- one left: room for another
		local d = T.connect(srv, "tcp", hello{ name = "f4" })
		d:wait_op("login")
	end)
end)

describe("handshake rate limit", function()
	it("refuses past the burst, with the reason", function()
		local srv = T.start_server{
			services = { "handshake" },
			config = { settings = { handshake = { rate = 0.001, burst = 3 } } },
		}
		local refused
		for i = 1, 4 do
			local cl = T.connect(srv, "udp", hello{})
			if i <= 3 then
				cl:wait_open()
			else
				refused = cl:wait_close()
			end
		end
		assert.are.same({ 4101, "too many connection attempts: wait a moment" },
			{ refused.code, refused.reason })
		T.stop_all()
	end)
end)

-- keep_s (docs/SERVICES.md, "login"): a player whose session closed is
-- kept that long; a cookie login after it starts afresh (restored false,
-- new data). Two servers, keep_s 1 and 600, the same steps: only the
-- first forgets, so the second proves the data would have been kept.
local keeper = [[
local M = {}
function M.message(s, data)
	if data == "set" then s.player.data.x = 42; s:send("set") end
	if data == "get" then s:send("x=" .. tostring(s.player.data.x)) end
end
return M
]]

describe("login keep_s", function()
	lazy_teardown(T.stop_all)

	it("a cookie login after keep_s gets restored = false and fresh data", function()
		local short = T.start_server{ services = { "login", "keeper" }, inline = { keeper = keeper },
			config = { settings = { login = { keep_s = 1 } } } }
		local long = T.start_server{ services = { "login", "keeper" }, inline = { keeper = keeper },
			config = { settings = { login = { keep_s = 600 } } } }
		local cookies = {}
		for _, srv in ipairs({ short, long }) do
			local a = T.connect(srv, "udp", hello{ name = "kim" })
			local m = a:wait_login()
			assert.is_false(m.restored)
			cookies[srv] = m.cookie
			assert(a:send("set"))
			assert.are.equal("set", a:wait_message())
			a:close()
			a:wait_close()
		end
		-- 2 s pass on the clock (the servers' too): past keep_s = 1
		local t0 = T.now_ms()
		T.wait(function() return T.now_ms() - t0 >= 2000 end, 3000)
		local got = {}
		for _, srv in ipairs({ short, long }) do
			local a = T.connect(srv, "udp", hello{ cookie = cookies[srv] })
			local m = a:wait_login()
			assert(a:send("get"))
			got[srv] = { m.restored, a:wait_message(), m.uid }
			a:close()
			a:wait_close()
		end
		assert.are.same({ false, "x=nil", "dev:kim" }, got[short])
		assert.are.same({ true, "x=42", "dev:kim" }, got[long])
	end)
end)
