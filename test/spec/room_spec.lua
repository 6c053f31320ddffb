-- The room service (docs/SERVICES.md): lifecycle, capacity, metadata,
-- state sync (newest wins) and frame sync (every frame, in order, and a
-- resumed member catching up).
local T = require "moongate.test"
local json = require "moongate.json"
local sync -- require "moongate.sync" (below, with the sync tests)

local function next_op(cl, op, ms)
	while true do
		local m = json.decode(cl:wait_message(ms or 5000))
		if type(m) == "table" and m.op == op then
			return m
		end
	end
end

local function login(srv, name, transport, opts)
	local cl = T.connect(srv, transport or "udp", json.encode({ v = 1, name = name }), opts)
	local m = next_op(cl, "login")
	cl.id = m.id
	return cl
end

-- A logic that logs every callback it gets, in order.
local life = [[
local moongate = require "moongate"
local M = { tick_rate = 50, capacity = 2 }
local function log(what) moongate.info("life: %s", what) end
function M.init(room, params) room.state.word = params.word; log("init " .. tostring(params.word)) end
function M.join_attempt(room, p, meta)
	log("join_attempt " .. p.name)
	if p.name == "mallory" then return false, "not you" end
	return true
end
function M.join(room, p) log("join " .. p.name) end
function M.tick(room, n) if n == 1 then log("tick 1") end end
function M.message(room, p, data, reliable) log("message " .. p.name .. " " .. data); room:broadcast(room.state.word .. ":" .. data) end
function M.leave(room, p, why) log("leave " .. p.name .. " " .. why) end
function M.dispose(room) log("dispose") end
return M
]]

describe("rooms", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "login", "room" },
			inline = { life = life },
			config = { settings = { room = { modes = { life = "life" } } } },
		}
	end)
	lazy_teardown(T.stop_all)

	it("calls the logic in order: init, join_attempt, join, tick, message, leave, dispose", function()
		local a = login(srv, "ann")
		local b = login(srv, "bob")
		local m = login(srv, "mallory")
		assert(a:send(json.encode{ op = "create", mode = "life", meta = { map = "dust" },
			params = { word = "hi" } }))
		local room = next_op(a, "created").room
		local joined = next_op(a, "joined")
		assert.are.same({ room, 1, "life", { map = "dust" } },
			{ joined.room, joined.seat, joined.mode, joined.meta })

		assert(m:send(json.encode{ op = "join", room = room }))
		assert.are.same({ "join", "not you" }, (function(e) return { e.req, e.reason } end)(next_op(m, "error")))
		assert(b:send(json.encode{ op = "rooms" }))
		local list = next_op(b, "rooms").rooms
		assert.are.same({ { id = room, mode = "life", members = 1, capacity = 2, meta = { map = "dust" } } }, list)
		assert(b:send(json.encode{ op = "join", room = room }))
		assert.are.equal(2, next_op(b, "joined").seat)
		assert.are.equal("join", next_op(a, "member").event)
		-- full
		assert(m:send(json.encode{ op = "join", room = room }))
		assert.are.equal("room is full", next_op(m, "error").reason)

		srv:wait_log("life: tick 1", 5000) -- ticks run on their own timer
		assert(a:send("ping"))
		T.wait(function()
			for _, s in ipairs(b.messages) do if s == "hi:ping" then return true end end
		end, 5000, a, b)
		assert(a:send(json.encode{ op = "leave" }))
		assert.are.equal("left", next_op(a, "left").reason)
		assert(b:send(json.encode{ op = "leave" }))
		next_op(b, "left")
		srv:wait_log("life: dispose", 5000)

		local order = {}
		for line in srv:log():gmatch("[^\n]+") do
			local what = line:match("life: (.*)$")
			if what then
				order[#order + 1] = what
			end
		end
		assert.are.same({ "init hi", "join_attempt ann", "join ann", "join_attempt mallory",
			"join_attempt bob", "join bob", "tick 1", "message ann ping", "leave ann left",
			"leave bob left", "dispose" }, order)
		for _, cl in ipairs({ a, b, m }) do
			cl:close()
			cl:wait_close()
		end
	end)

	it("refuses bad requests with a reason", function()
		local a = login(srv, "ann")
		assert(a:send(json.encode{ op = "join", room = 999 }))
		assert.are.equal("no such room", next_op(a, "error").reason)
		assert(a:send(json.encode{ op = "create", mode = "nope" }))
		assert.are.equal("no such mode: nope", next_op(a, "error").reason)
		assert(a:send(json.encode{ op = "create", mode = "life", capacity = 1000 }))
		assert.matches("capacity", next_op(a, "error").reason)
		assert(a:send(json.encode{ op = "leave" }))
		assert.are.equal("not in a room", next_op(a, "error").reason)
		a:close()
		a:wait_close()
	end)
end)
