-- Edge cases of the shipped services, found in review: a room closed by
-- its logic with members, quick match and a refusing or failing
-- join_attempt, a login right after a logout, and reloads of login.lua and
-- room.lua (the game's authenticate kept, later rooms reached, a refused
-- file changing nothing).
local T = require "moongate.test"
local json = require "moongate.json"
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
local function login(srv, name)
	local cl = T.connect(srv, "udp", json.encode({ v = 1, name = name }))
	cl.id = cl:wait_op("login").id
	return cl
end
local ender = [[
local moongate = require "moongate"
local M = { tick_rate = 50 }
function M.message(room, p, data) if data == "end" then room:close("match over") end end
function M.dispose(room) moongate.info("ender: dispose %d", room.id) end
return M
]]
local keeper = [[
local M = { tick_rate = 10, keep_empty = true }
function M.join_attempt(room, p) if p.name == "zed" then return false, "no zed" end return true end
return M
]]
local boom = [[
local M = { tick_rate = 10 }
function M.join_attempt(room, p) error("db down") end
return M
]]
describe("room close", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "login", "room" },
			inline = { ender = ender, keeper = keeper, boom = boom },
			config = { settings = { room = { rooms_max = 1,
				modes = { ender = "ender", keeper = "keeper", boom = "boom" } } } } }
	end)
	lazy_teardown(T.stop_all)

	it("counts rooms right after room:close() with a member", function()
		local a = login(srv, "ann")
		assert(a:send(json.encode{ op = "create", mode = "ender" }))
		local r = a:wait_op("joined").room
		assert(a:send("end"))
		a:wait_op("left")
		srv:wait_log("room %d+ %(ender%) closed: match over")
		-- rooms_max = 1: one room may exist, never two
		local b = login(srv, "bob")
		assert(a:send(json.encode{ op = "create", mode = "ender" }))
		a:wait_op("joined")
		assert(b:send(json.encode{ op = "create", mode = "ender" }))
		local m
		repeat m = json.decode(b:wait_message()) until m.op == "joined" or m.op == "error"
		assert.are.equal(1, select(2, srv:log():gsub("ender: dispose " .. r .. "\n", "")))
		assert.are.equal("error", m.op, "a second room was created with rooms_max = 1")
	end)
end)
describe("quick match", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "login", "room" },
			inline = { keeper = keeper, boom = boom },
			config = { settings = { room = { modes = { keeper = "keeper", boom = "boom" } } } } }
	end)
	lazy_teardown(T.stop_all)
	it("does not close an existing keep_empty room when the logic refuses", function()
		local a = login(srv, "ann")
		assert(a:send(json.encode{ op = "create", mode = "keeper" }))
		local r = a:wait_op("joined").room
		assert(a:send(json.encode{ op = "leave" }))
		a:wait_op("left")
		local z = login(srv, "zed")
		assert(z:send(json.encode{ op = "join", mode = "keeper" }))
		z:wait_op("error")
		assert(a:send(json.encode{ op = "join", room = r }))
		local m
		repeat m = json.decode(a:wait_message()) until m.op == "joined" or m.op == "error"
		assert.are.equal("joined", m.op, "the persistent room " .. r .. " is gone: " .. tostring(m.reason))
	end)
	it("does not seat a player when join_attempt raises", function()
		local a = login(srv, "cat")
		assert(a:send(json.encode{ op = "create", mode = "boom" }))
		local m
		repeat m = json.decode(a:wait_message()) until m.op == "joined" or m.op == "error"
		assert.are.equal("error", m.op, "seated although join_attempt raised")
	end)
end)
describe("logout, then a login before the old session's close event", function()
	it("gives the seat up and leaves the new session normal", function()
		local srv = T.start_server{ services = { "handshake", "login", "room" },
			config = { session = { timeout_ms = 400, heartbeat_ms = 100, resume_grace_ms = 300 },
				settings = { room = { hold_ms = 10000 } } } }
		local a = T.connect(srv, "udp", json.encode{ v = 1, name = "gus" })
		a:wait_op("login")
		assert(a:send(json.encode{ op = "create", mode = "relay" }))
		a:wait_op("joined")
		assert(a:send(json.encode{ op = "logout" }))
		a:wait_op("logout")
		a:release()      -- app dies: the server's CLOSE is retried, no close event yet
		local b = T.connect(srv, "tcp", json.encode{ v = 1, name = "gus" })
		local lb = b:wait_op("login")
		b:release()      -- B dies too: its seat/data should be kept (hold_ms, keep_s)
		T.wait(function() return srv:log():find("session %x+ closed by server: code 9") end, 3000)
		local c = T.connect(srv, "udp", json.encode{ v = 1, cookie = lb.cookie })
		local lc = c:wait_op("login") 
		assert.is_true(lc.restored, "player forgotten at once: p.logged_out survived the re-login")
		T.stop_all()
	end)
end)
local login_src = read(T.repo_dir() .. "/service/login.lua")
local room_src = read(T.repo_dir() .. "/service/room.lua")
local game = [[
local login = require "login"
login.authenticate = function(hello)
	if hello.password ~= "pw" then return nil, "wrong password" end
	return "user:" .. hello.name, hello.name
end
return {}
]]
describe("reload of login.lua", function()
	it("keeps the game's authenticate", function()
		local srv = T.start_server{ services = { "login", "game" },
			inline = { login = login_src, game = game } }
		local c = T.connect(srv, "udp", json.encode{ v = 1, name = "ann", password = "nope" })
		assert.are.equal(4111, c:wait_close().code)
		srv:write_service("login", login_src .. "\n-- v2\n")
		srv:hup()
		srv:wait_log("reload: login reloaded")
		c = T.connect(srv, "udp", json.encode{ v = 1, name = "ann", password = "nope" })
		assert.are.same({ 4111, "wrong password" }, { c:wait_close().code, c.closed.reason })
		c = T.connect(srv, "udp", json.encode{ v = 1, name = "ann", password = "pw" })
		assert.are.equal("user:ann", c:wait_op("login").uid)
		T.stop_all()
	end)
end)
describe("two reloads of room.lua", function()
	it("reach a room made after the first", function()
		local function v(n)
			return (room_src:gsub('call%(room, "tick", room.tick%)',
				'call(room, "tick", room.tick); if room.tick %% 10 == 0 then moongate.info("tickver ' .. n .. ' room %%d", room.id) end'))
		end
		local srv = T.start_server{ services = { "login", "room" }, inline = { room = v(1) } }
		srv:write_service("room", v(2)); srv:hup(); srv:wait_log("reload: room reloaded")
		local a = T.connect(srv, "udp", json.encode{ v = 1, name = "ann" })
		a:wait_op("login")
		assert(a:send(json.encode{ op = "create", mode = "relay" }))
		local r = a:wait_op("joined").room
		srv:wait_log("tickver 2 room " .. r)
		srv:write_service("room", v(3)); srv:hup()
		T.wait(function() return srv:log():find("reload: room reloaded.*reload: room reloaded") end, 3000, a)
		T.wait(function() return srv:log():find("tickver 3 room " .. r, 1, true) ~= nil end, 2000, a)
		T.stop_all()
	end)
end)
describe("a refused reload of room.lua", function()
	it("keeps the old code whole", function()
		local srv = T.start_server{ services = { "login", "room" }, inline = { room = room_src } }
		local a = T.connect(srv, "udp", json.encode{ v = 1, name = "ann" })
		a:wait_op("login")
		local broken = room_src:gsub("function Room:members%(%)", "function Room:members() do return {} end")
			:gsub("\nreturn M%s*$", '\nerror("refuse me")\nreturn M\n')
		srv:write_service("room", broken); srv:hup()
		srv:wait_log("reload: room refused")
		assert(a:send(json.encode{ op = "create", mode = "relay" }))
		local j = a:wait_op("joined")
		assert.are.equal(1, #j.members, "Room:members came from the refused code")
		T.stop_all()
	end)
end)
