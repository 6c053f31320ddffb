-- The room service as a new user meets it (issue 16): every request gets
-- an answer (unknown ops, malformed fields, not JSON), room:kick and the
-- frame numbers of a frame-sync room do what docs/SERVICES.md says, and
-- the console closes a room.
local T = require "moongate.test"
local json = require "moongate.json"
local sync = require "moongate.sync"

local function login(srv, name, hello)
	hello = hello or { v = 1, name = name }
	local cl = T.connect(srv, "udp", json.encode(hello))
	local m = cl:wait_login()
	cl.id, cl.cookie = m.id, m.cookie
	return cl
end

local function create(cl, mode)
	assert(cl:send(json.encode{ op = "create", mode = mode }))
	local room = cl:wait_op("created").room
	return room, cl:wait_op("joined")
end

-- A logic with ops of its own; "kick me" kicks, with a reason.
local talker = [[
local moongate = require "moongate"
local json = require "moongate.json"
local M = { tick_rate = 10 }
function M.message(room, p, data)
	local m = json.decode(data)
	if m and m.op == "shout" then room:broadcast("shout " .. p.name) return end
	if data == "kick me" then
		local ok, err = room:kick(p, "afk")
		moongate.info("talker: kick -> %s", tostring(ok))
		moongate.info("talker: kick again -> %s %s", tostring(ok), tostring(select(2, room:kick(p, "afk"))))
	end
end
function M.leave(room, p, why) moongate.info("talker: leave %s %s", p.name, why) end
function M.dispose(room) moongate.info("talker: dispose %d", room.id) end
return M
]]
local quiet = [[ return { tick_rate = 10 } ]]   -- no message callback
local lockstep = [[ return { tick_rate = 20, sync = "frame", history = 256 } ]]

describe("room requests", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "login", "room" }, admin = true,
			inline = { talker = talker, quiet = quiet, lockstep = lockstep },
			config = { settings = { room = { modes = { talker = "talker", quiet = "quiet",
				lockstep = "lockstep" } } } },
		}
	end)
	lazy_teardown(T.stop_all)

	it("answers an unknown op, no op, or not JSON from a player in no room", function()
		local a = login(srv, "ua")
		assert(a:send(json.encode{ op = "jion", room = 1 }))
		local e = a:wait_op("error")
		assert.are.equal("jion", e.req)
		assert.matches('unknown op "jion"', e.reason, 1, true)
		assert.matches("rooms, create, join, leave", e.reason, 1, true)
		assert(a:send(json.encode{ room = 1 }))
		e = a:wait_op("error")
		assert.is_nil(e.req)
		assert.are.equal('a request needs an "op"', e.reason)
		assert(a:send(json.encode{ op = 7 }))
		e = a:wait_op("error")
		assert.are.same({ nil, '"op" must be a string' }, { e.req, e.reason })
		assert(a:send('{"op":"join","room":'))
		e = a:wait_op("error")
		assert.is_nil(e.req)
		assert.matches("^not a JSON object: ", e.reason)
		-- not JSON at all: not the room's, no answer (a later service's)
		assert(a:send("hello"))
		assert(a:send(json.encode{ op = "rooms" }))
		a:wait_op("rooms")
		assert.are.equal(6, #a.messages) -- login, 4 errors, rooms: "hello" got none
		a:close()
		a:wait_close()
	end)

	it("answers malformed fields of a known op with the field", function()
		local a = login(srv, "ma")
		local cases = {
			{ { op = "join" }, 'join: "room" (an id) or "mode" (quick match) is required' },
			{ { op = "join", room = "3" }, 'join: "room" must be a number' },
			{ { op = "join", mode = 5 }, 'join: "mode" must be a string' },
			{ { op = "create" }, 'create: "mode" is required' },
			{ { op = "create", mode = "talker", meta = "x" }, 'create: "meta" must be an object' },
			{ { op = "create", mode = "talker", params = 1 }, 'create: "params" must be an object' },
			{ { op = "create", mode = { 1 } }, 'create: "mode" must be a string' },
			{ { op = "rooms", after = "x" }, 'rooms: "after" must be a number' },
		}
		for _, c in ipairs(cases) do
			assert(a:send(json.encode(c[1])))
			local e = a:wait_op("error")
			assert.are.same({ c[1].op, c[2] }, { e.req, e.reason })
		end
		a:close()
		a:wait_close()
	end)

	it("passes a seated player's own ops to the logic, and answers them when it takes none", function()
		local a, b = login(srv, "sa"), login(srv, "sb")
		local room = create(a, "talker")
		assert(b:send(json.encode{ op = "join", room = room }))
		b:wait_op("joined")
		assert(a:send(json.encode{ op = "shout" }))     -- the logic's op
		b:wait(function()
			for _, m in ipairs(b.messages) do if m == "shout sa" then return true end end
		end, 5000, "the shout")
		assert.is_nil(a.messages[#a.messages]:find('"op":"error"', 1, true))
		local c = login(srv, "sc")
		create(c, "quiet")
		assert(c:send(json.encode{ op = "shout" }))
		local e = c:wait_op("error")
		assert.are.equal("shout", e.req)
		assert.matches("this room's logic takes no messages", e.reason, 1, true)
		for _, cl in ipairs({ a, b, c }) do
			cl:close()
			cl:wait_close()
		end
	end)

	it("kicks as documented: the logic hears \"kicked\", the player left with the detail", function()
		local a, b = login(srv, "ka"), login(srv, "kb")
		local room = create(a, "talker")
		assert(b:send(json.encode{ op = "join", room = room }))
		b:wait_op("joined")
		srv:mark_log()
		assert(b:send("kick me"))
		local left = b:wait_op("left")
		assert.are.same({ room, "kicked", "afk" }, { left.room, left.reason, left.detail })
		srv:wait_log("talker: leave kb kicked$")
		srv:wait_log("talker: kick %-> true")
		assert.matches("not in this room", srv:wait_log("talker: kick again"), 1, true)
		local ev = a:wait_op("member")
		assert.are.equal("join", ev.event)
		ev = a:wait_op("member")
		assert.are.same({ "leave", b.id }, { ev.event, ev.id })
		a:close()
		a:wait_close()
		b:close()
		b:wait_close()
	end)

	it("closes a room from the console, with the reason", function()
		local a, b = login(srv, "ca"), login(srv, "cb")
		local room = create(a, "talker")
		assert(b:send(json.encode{ op = "join", room = room }))
		b:wait_op("joined")
		local ok, reply = srv:admin("room close " .. room .. " server maintenance")
		assert.is_true(ok, reply)
		assert.are.equal(("room %d closed: server maintenance (2 members left)"):format(room), reply)
		for _, cl in ipairs({ a, b }) do
			local left = cl:wait_op("left")
			assert.are.same({ room, "server maintenance" }, { left.room, left.reason })
		end
		srv:wait_log("talker: leave ca server maintenance")
		srv:wait_log("talker: dispose " .. room)
		ok, reply = srv:admin("rooms")
		assert.is_nil(reply:find("^" .. room .. " talker"))
		-- errors: no such room, usage
		ok, reply = srv:admin("room close " .. room)
		assert.is_false(ok)
		assert.are.equal("error: no room " .. room, reply)
		ok, reply = srv:admin("room open 1")
		assert.is_false(ok)
		assert.are.equal("error: usage: room close ID [reason]", reply)
		ok, reply = srv:admin("help")
		assert.truthy(reply:find("room close ID [reason]", 1, true), reply)
		a:close()
		b:close()
	end)

	it("says in joined the first frame a member gets, and a cookie login's \"frame\": N resumes after N", function()
		local a, b = login(srv, "fa"), login(srv, "fb")
		local room, ja = create(a, "lockstep")
		assert(b:send(json.encode{ op = "join", room = room }))
		local jb = b:wait_op("joined")
		local function frames(cl)
			local out = {}
			for _, m in ipairs(cl.messages) do
				if sync.is_frame(m) then
					out[#out + 1] = (sync.decode_frame(m))
				end
			end
			return out
		end
		-- a new member gets frames from joined.frame on
		b:wait(function() return #frames(b) >= 3 end, 5000, "3 frames")
		assert.are.equal(jb.frame, frames(b)[1])
		a:wait(function() return #frames(a) >= 1 end, 5000, "a frame")
		assert.are.equal(ja.frame, frames(a)[1])
		-- a closes its app after frame `had`; frames go on without it
		a:wait(function() return #frames(a) >= 8 end, 5000, "8 frames")
		a:close()
		a:wait_close()
		local fa = frames(a)
		local had = fa[#fa] - 3 -- it kept only up to here (its app died before the rest)
		local seen = #frames(b)
		b:wait(function() return #frames(b) >= seen + 5 end, 5000, "5 more frames")
		-- back with the cookie, saying the frame it has: frames from the next one
		local a2 = login(srv, nil, { v = 1, cookie = a.cookie, frame = had })
		local j2 = a2:wait_op("joined")
		assert.is_true(j2.rejoined)
		assert.are.equal(had + 1, j2.frame)
		a2:wait(function() return #frames(a2) >= 10 end, 5000, "10 frames")
		local f2 = frames(a2)
		assert.are.equal(had + 1, f2[1])
		for i = 2, #f2 do
			assert.are.equal(f2[i - 1] + 1, f2[i])
		end
		-- without "frame": from the first frame it was not sent (after the
		-- last one a2 got, or later when some were still on their way)
		a2:close()
		a2:wait_close()
		f2 = frames(a2)
		local a3 = login(srv, nil, { v = 1, cookie = a.cookie })
		local j3 = a3:wait_op("joined")
		assert.is_true(j3.frame >= f2[#f2] + 1, "joined.frame " .. j3.frame ..
			" after frame " .. f2[#f2])
		a3:wait(function() return #frames(a3) >= 1 end, 5000, "a frame")
		assert.are.equal(j3.frame, frames(a3)[1])
		a3:close()
		b:close()
	end)
end)
