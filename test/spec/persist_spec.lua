-- Players that survive a restart (issue 16's proof): with Redis, the login
-- service keeps each player's record (uid, id, name, kept data, held seat)
-- and every revocation there. After SIGTERM and after kill -9, a cookie
-- login restores the player, its data and its seat (the room made again);
-- a cookie revoked before the restart stays refused. Run by ctest through
-- busted, against a real redis-server.
local T = require "moongate.test"
local json = require "moongate.json"

-- "game": keeps a score in the player's data, saved at once
local GAME = [[
local json = require "moongate.json"
local login = require "login"
local svc = {}
function svc.message(session, data, reliable)
	if not reliable or data:byte(1) ~= 123 then return end
	local m = json.decode(data)
	local p = login.player(session)
	if type(m) ~= "table" or not p then return end
	if m.op == "keep" then
		p.data.score = m.value
		assert(login.save(p))
		session:send(json.encode({ op = "kept" }))
		return true
	elseif m.op == "get" then
		session:send(json.encode({ op = "data", data = p.data }))
		return true
	end
end
return svc
]]

local function start(rd, extra)
	local cfg = { redis = { url = rd.url },
		settings = { room = { hold_ms = 600000 }, login = { keep_s = 600 } } }
	for k, v in pairs(extra or {}) do cfg[k] = v end
	return T.start_server{ services = { "login", "game", "room" },
		inline = { game = GAME }, config = cfg }
end

local function op(cl, name, ms)
	local m = cl:wait_op(name, ms or 5000)
	return m
end

local function login(srv, hello, transport)
	local cl = T.connect(srv, transport or "udp", json.encode(hello))
	return cl, cl:wait_login() -- (open is not a login: a refusal follows it)
end

describe("players that survive a restart", function()
	after_each(function() T.stop_all() end)

	for _, how in ipairs({ "TERM", "KILL" }) do
		it("restores the player, its data and its seat after " .. how ..
			", and keeps a revoked cookie refused", function()
			local rd = T.start_redis()
			local srv = start(rd)
			local ann, a = login(srv, { v = 1, name = "ann" })
			assert.is_false(a.restored)
			assert(ann:send(json.encode({ op = "keep", value = 42 })))
			op(ann, "kept")
			assert(ann:send(json.encode({ op = "create", mode = "relay", capacity = 4,
				meta = { map = "dust" } })))
			local joined = op(ann, "joined")
			local bob, b = login(srv, { v = 1, name = "bob" }, "tcp")
			assert(bob:send(json.encode({ op = "join", room = joined.room })))
			op(bob, "joined")
			-- the room directory: in Redis beside the players
			assert.are.equal("relay", rd:cli("HGET", "moongate:room:" .. joined.room, "mode"))
			assert.are.equal("2", rd:cli("HGET", "moongate:room:" .. joined.room, "members"))
			local cal, c = login(srv, { v = 1, name = "cal" })
			assert(cal:send(json.encode({ op = "logout" })))
			cal:wait_close()

			srv:restart(how)

			-- ann comes back with her cookie: same uid and id, her data, her seat
			local ann2, a2 = login(srv, { v = 1, cookie = a.cookie })
			assert.is_true(a2.restored)
			assert.are.equal(a.uid, a2.uid)
			assert.are.equal(a.id, a2.id)
			local rj = op(ann2, "joined")
			assert.is_true(rj.rejoined)
			assert.are.equal(joined.room, rj.room)
			assert.are.equal(joined.seat, rj.seat)
			assert.are.equal("dust", rj.meta.map)
			assert(ann2:send(json.encode({ op = "get" })))
			assert.are.equal(42, op(ann2, "data").data.score)
			-- bob joins the room ann's return made again, in his seat
			local bob2, b2 = login(srv, { v = 1, cookie = b.cookie }, "tcp")
			assert.are.equal(b.id, b2.id)
			local rj2 = op(bob2, "joined")
			assert.are.equal(joined.room, rj2.room)
			assert.are.equal(2, #rj2.members)
			-- cal logged out before the restart: his cookie stays refused
			local cal2 = T.connect(srv, "udp", json.encode({ v = 1, cookie = c.cookie }))
			cal2:wait_close()
			assert.are.equal(4112, cal2.closed.code)
			assert.truthy(cal2.closed.reason:find("revoked", 1, true), cal2.closed.reason)
			-- a new player gets an id no one had, a new room too
			local dan, d = login(srv, { v = 1, name = "dan" })
			assert.is_true(d.id > c.id)
			assert(dan:send(json.encode({ op = "create", mode = "relay" })))
			assert.is_true(op(dan, "joined").room > joined.room)
			assert.are.equal("2", rd:cli("HGET", "moongate:room:" .. joined.room, "members"))
			-- it all lives in Redis
			assert.truthy(rd:cli("HGET", "moongate:player:" .. a.uid, "data"):find("42"))
			assert.are.equal("0", rd:cli("EXISTS", "moongate:player:" .. c.uid))
			assert.are.equal("1", rd:cli("EXISTS", "moongate:revoked:" .. c.uid))
		end)
	end

	it("moves a player between two servers of one deployment: presence, a kick through Redis, one revocation for all", function()
		local rd = T.start_redis()
		local a = start(rd, { node_id = "A" })
		local b = start(rd, { node_id = "B", secrets = a.dir .. "/secret" })
		local ann, l1 = login(a, { v = 1, name = "ann" })
		assert(ann:send(json.encode({ op = "keep", value = 7 })))
		op(ann, "kept")
		assert.are.equal("A", rd:cli("HGET", "moongate:presence:" .. l1.uid, "node"))
		-- the same player on the other server, with its cookie
		local ann2, l2 = login(b, { v = 1, cookie = l1.cookie }, "tcp")
		assert.is_true(l2.restored)
		assert.are.equal(l1.id, l2.id)
		assert(ann2:send(json.encode({ op = "get" })))
		assert.are.equal(7, op(ann2, "data").data.score)
		-- server A heard it through Redis and closed its session
		ann:wait_close()
		assert.are.equal(4113, ann.closed.code)
		assert.are.equal("B", rd:cli("HGET", "moongate:presence:" .. l1.uid, "node"))
		-- a logout on B revokes the cookie on A too
		assert(ann2:send(json.encode({ op = "logout" })))
		ann2:wait_close()
		local again = T.connect(a, "udp", json.encode({ v = 1, cookie = l1.cookie }))
		again:wait_close()
		assert.are.equal(4112, again.closed.code)
	end)

	it("refuses logins while Redis is down, and logs in again once it is back", function()
		local rd = T.start_redis({ persist = true }) -- its data outlives its stop
		local srv = start(rd, { redis = { url = rd.url, backoff_max_ms = 100 } })
		local _, a = login(srv, { v = 1, name = "ann" })
		rd:stop()
		local cl
		T.wait(function()
			cl = T.connect(srv, "udp", json.encode({ v = 1, cookie = a.cookie }))
			cl:wait_close()
			return cl.closed.code == 4111
		end, 5000)
		assert.truthy(cl.closed.reason:find("login unavailable", 1, true), cl.closed.reason)
		rd:start()
		local ok
		T.wait(function()
			local c2 = T.connect(srv, "udp", json.encode({ v = 1, cookie = a.cookie }))
			c2:wait(function() return #c2.messages > 0 or c2.closed end, 5000)
			ok = #c2.messages > 0 and json.decode(c2.messages[1])
			return ok and ok.op == "login"
		end, 5000)
		assert.are.equal(a.id, ok.id)
	end)
end)
