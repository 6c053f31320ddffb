-- moongate.test itself (issue 16, "seen when tried as a new user would"):
-- srv:wait_log steps the clients and never returns a line twice or one
-- from before srv:mark_log(); cl:wait_op leaves the messages it passes
-- over unread; open is not a login (cl:wait_login).
local T = require "moongate.test"
local json = require "moongate.json"

-- Logs each session's connect and each "ping" (numbered), then answers
-- "pong N"; "ops" sends three messages, two of them JSON ops.
local PINGER = [[
local moongate = require "moongate"
local M = { n = 0 }
function M.connect(s) moongate.info("pinger: hello from %08x", s:id()) end
function M.message(s, data)
	if data == "ping" then
		M.n = M.n + 1
		moongate.info("pinger: got ping %d", M.n)
		s:send("pong " .. M.n)
	elseif data == "ops" then
		s:send('{"op":"a","k":1}')
		s:send('{"op":"b","k":2}')
		s:send("plain")
	end
end
return M
]]

describe("moongate.test", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "pinger" }, inline = { pinger = PINGER } }
	end)
	lazy_teardown(T.stop_all)

	it("wait_log steps the clients: a handshake completes while it waits", function()
		-- nothing but wait_log runs the client: its answer to the server's
		-- CHALLENGE, then its first packet, are sent from inside the wait
		local cl = assert(T.connect(srv, "udp"))
		local line = srv:wait_log("pinger: hello from %x+", 3000)
		assert.matches("pinger: hello from %x+", line)
		assert.is_true(cl.opened)
		cl:close()
		cl:wait_close()
	end)

	it("wait_log returns each line once, and nothing from before mark_log", function()
		local cl = assert(T.connect(srv, "udp"))
		cl:wait_open()
		assert(cl:send("ping"))
		local n1 = tonumber(srv:wait_log("pinger: got ping %d+"):match("(%d+)$"))
		assert(cl:send("ping"))
		-- the same pattern again: the next line, not the one just returned
		local n2 = tonumber(srv:wait_log("pinger: got ping %d+"):match("(%d+)$"))
		assert.are.equal(n1 + 1, n2)
		-- a line written before the mark is not matched, even unread
		assert(cl:send("ping"))
		cl:wait(function() return cl.messages[#cl.messages] == "pong " .. (n2 + 1) end,
			3000, "pong " .. (n2 + 1)) -- so its log line is written
		srv:mark_log()
		local ok, err = pcall(srv.wait_log, srv, "pinger: got ping", 200)
		assert.is_false(ok)
		assert.matches("after the mark", err)
		assert(cl:send("ping"))
		assert.are.equal("pinger: got ping " .. (n2 + 2),
			srv:wait_log("pinger: got ping %d+"):match("pinger: got ping %d+"))
		cl:close()
		cl:wait_close()
	end)

	it("wait_op leaves the messages it passes over for the next waits", function()
		local cl = assert(T.connect(srv, "tcp"))
		cl:wait_open()
		assert(cl:send("ops"))
		assert.are.equal(2, cl:wait_op("b").k)
		-- what wait_op passed over is still unread, in order
		assert.are.equal('{"op":"a","k":1}', cl:wait_message())
		assert.are.equal("plain", cl:wait_message())
		assert.are.equal(3, cl.read)
		-- and an op passed over by one wait_op is found by the next
		assert(cl:send("ops"))
		assert.are.equal("plain", cl:wait(function()
			return #cl.messages >= 6 and cl.messages[6]
		end, 3000, "three more messages"))
		assert.are.equal(2, cl:wait_op("b").k)
		assert.are.equal(1, cl:wait_op("a").k)
		assert.are.equal("plain", cl:wait_message())
		local ok = pcall(cl.wait_message, cl, 100)
		assert.is_false(ok) -- nothing left unread
		cl:close()
		cl:wait_close()
	end)
end)

describe("moongate.test with the login service", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "login" } }
	end)
	lazy_teardown(T.stop_all)

	it("wait_open is not a login: a refusal comes after open, wait_login reports it", function()
		local cl = assert(T.connect(srv, "udp", json.encode{ v = 1, cookie = "2.bad" }))
		assert.is_true(cl:wait_open())            -- the session opened...
		local ok, err = pcall(cl.wait_login, cl)  -- ...and the login was refused
		assert.is_false(ok)
		assert.matches('login refused %(after open%): 4112 "bad cookie"', err)
		assert.are.same({ 4112, "bad cookie" }, { cl.closed.code, cl.closed.reason })
		local good = assert(T.connect(srv, "tcp", json.encode{ v = 1, name = "ann" }))
		local m = good:wait_login()
		assert.are.equal("dev:ann", m.uid)
		good:close()
		good:wait_close()
	end)
end)
