-- A crash or a restart (issue 14 §4): the new process answers an old
-- session's packets with its stateless reset (docs/PROTOCOL.md, "Stateless
-- reset"), so the client learns at once that its session is gone, instead
-- of hearing nothing for timeout + grace; it logs in again with its cookie.
local T = require "moongate.test"
local json = require "moongate.json"

local function hello(t) t.v = t.v or 1; return json.encode(t) end

-- A service that mints a version 1 cookie (the format before names were
-- in it) for a uid, as an older server would have.
local mint = [[
local moongate = require "moongate"
local M = {}
function M.message(session, data)
	local uid = data:match("^mint1 (.+)$")
	if uid then
		local hex = function(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
		local body = ("1.%s.%d.%d"):format(hex(uid), math.floor(moongate.time() * 1000),
			math.floor(moongate.time()) + 3600)
		session:send(body .. "." .. hex(moongate.sign(body, "login-cookie")))
	end
end
return M
]]

describe("after kill -9 and a restart", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login", "mint" }, admin = true,
			inline = { mint = mint },
			-- the defaults that matter here: heartbeat 1000 ms, timeout
			-- 10 s, and a resume grace, so a silent server would keep the
			-- client waiting 10 s + 30 s
			config = { session = { resume_grace_ms = 30000 } },
		}
	end)
	lazy_teardown(T.stop_all)

	for _, transport in ipairs{ "udp", "tcp" } do
		it("a client learns it at once and logs in again with its cookie (" .. transport .. ")", function()
			local cl = T.connect(srv, transport, hello{ name = "ann_" .. transport })
			local first = cl:wait_op("login")
			assert.is_string(first.cookie)
			assert(cl:send("before the crash"))
			cl:step(50)

			assert.are.equal(128 + 9, srv:restart()) -- SIGKILL
			local t0 = T.now_ms()
			local c = cl:wait_close(9000) -- below timeout_ms: only a reset can do it
			local learned = T.now_ms() - t0
			assert.are.equal(10, c.code)
			assert.matches("session reset", c.reason, 1, true)
			assert.is_true(c.remote)

			local again = T.connect(srv, transport, hello{ cookie = first.cookie })
			local login = again:wait_op("login")
			local back = T.now_ms() - t0
			assert.are.equal(first.uid, login.uid)
			assert.are.equal(first.name, login.name)
			assert.is_false(login.restored) -- its kept data died with the process
			assert.is_string(login.cookie)
			print(("reset: %s client learned in %d ms, logged in again after %d ms")
				:format(transport, learned, back))
			again:close()
			again:wait_close()
			local ok, stats = srv:admin("stats gate")
			assert.is_true(ok)
			assert.is_truthy(tonumber(stats:match("gate%.resets (%d+)")) >= 1)
		end)
	end

	it("still takes a version 1 cookie (no name in it)", function()
		local a = T.connect(srv, "udp", hello{ name = "old" })
		a:wait_op("login")
		assert(a:send("mint1 dev:old"))
		local v1
		a:wait(function()
			for _, m in ipairs(a.messages) do
				v1 = m:match("^1%.%x+%.%d+%.%d+%.%x+$") and m or v1
			end
			return v1
		end, 5000, "a minted v1 cookie")
		a:close()
		a:wait_close()
		local b = T.connect(srv, "tcp", hello{ cookie = v1 })
		local login = b:wait_op("login")
		assert.are.same({ "dev:old", true }, { login.uid, login.restored })
		assert.matches("^2%.", login.cookie)
	end)
end)

describe("with login.cookies_survive_restart = false", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{
			services = { "handshake", "login" }, admin = true,
			config = { settings = { login = { cookies_survive_restart = false } } },
		}
	end)
	lazy_teardown(T.stop_all)

	it("a cookie from before the restart is refused, saying why", function()
		local first = T.connect(srv, "udp", hello{ name = "bob" })
		local cookie = first:wait_op("login").cookie
		first:close()
		first:wait_close()
		-- before the restart it works
		local cl = T.connect(srv, "tcp", hello{ cookie = cookie })
		assert.is_true(cl:wait_op("login").restored)
		srv:restart()
		assert.are.equal(10, cl:wait_close(9000).code)
		local again = T.connect(srv, "udp", hello{ cookie = cookie })
		local c = again:wait_close()
		assert.are.equal(4112, c.code)
		assert.matches("cookie from before the server restarted", c.reason, 1, true)
	end)
end)
