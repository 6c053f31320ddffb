-- moongate.http against a real HTTP backend (T.start_http_backend,
-- test/lib/http_backend.py): requests from callbacks that wait, responses
-- as tables, every bound (timeout, size), errors, and a request dropped
-- with its session. Run by ctest through busted.
local T = require "moongate.test"
local json = require "moongate.json"

local HSVC = [[
local moongate = require "moongate"
local http = require "moongate.http"
local json = require "moongate.json"
local svc = {}

function svc.message(session, data)
	local cmd = json.decode(data)
	local out
	if cmd.op == "request" then
		local res, err = http.request(cmd.opts)
		out = { res = res or json.null, err = err }
		if cmd.then_send then session:send("after") end
	elseif cmd.op == "stats" then
		out = { stats = moongate.server_stats().http }
	end
	session:send(json.encode(out))
	return true
end

return svc
]]

local function start(config)
	return T.start_server{ services = { "hsvc" }, inline = { hsvc = HSVC }, config = config }
end

local function ask(cl, t, ms)
	local before = #cl.messages
	assert(cl:send(json.encode(t)))
	T.wait(function() return #cl.messages > before end, ms or 5000, cl)
	return json.decode(cl.messages[before + 1])
end

describe("moongate.http", function()
	after_each(function() T.stop_all() end)

	it("sends a request with its method, headers and body, and returns the response", function()
		local hb = T.start_http_backend()
		local srv = start()
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		local r = ask(cl, { op = "request", opts = { url = hb.url .. "/echo?a=1", method = "PUT",
			headers = { ["X-Game"] = "moongate" }, body = "hello" } }).res
		assert.are.equal(200, r.status)
		assert.are.equal("a, b", r.headers["x-backend"]) -- a repeated header, joined
		assert.are.equal("application/json", r.headers["content-type"])
		local echo = json.decode(r.body)
		assert.are.equal("PUT", echo.method)
		assert.are.equal("/echo?a=1", echo.path)
		assert.are.equal("hello", echo.body)
		assert.are.equal("moongate", echo.headers["x-game"])
		-- headers as a list of lines
		r = ask(cl, { op = "request", opts = { url = hb.url .. "/echo",
			headers = { "X-Line: yes", "X-Other: 2" } } }).res
		echo = json.decode(r.body)
		assert.are.equal("yes", echo.headers["x-line"])
		assert.are.equal("2", echo.headers["x-other"])
		assert.is_true(r.seconds >= 0)
		assert.are.equal("GET", json.decode(ask(cl, { op = "request",
			opts = { url = hb.url .. "/echo" } }).res.body).method)
		-- a 4xx is a response, not an error
		r = ask(cl, { op = "request", opts = { url = hb.url .. "/status?code=404" } })
		assert.are.equal(404, r.res.status)
		assert.is_nil(r.err)
		-- POST by default when there is a body
		r = ask(cl, { op = "request", opts = { url = hb.url .. "/echo", body = "x" } }).res
		assert.are.equal("POST", json.decode(r.body).method)
	end)

	it("keeps every bound: size, time, scheme, refused connections", function()
		local hb = T.start_http_backend()
		local srv = start({ http = { timeout_ms = 3000 } })
		local cl = T.connect(srv, "tcp")
		cl:wait_open()
		local r = ask(cl, { op = "request", opts = { url = hb.url .. "/big?n=5000", max_size = 1000 } })
		assert.are.equal(json.null, r.res)
		assert.truthy(r.err:find("larger than 1000 bytes", 1, true), r.err)
		assert.are.equal(5000, #ask(cl, { op = "request", opts = { url = hb.url .. "/big?n=5000" } }).res.body)
		r = ask(cl, { op = "request", opts = { url = hb.url .. "/slow?ms=3000", timeout_ms = 100 } })
		assert.truthy(r.err:find("^timeout"), r.err)
		r = ask(cl, { op = "request", opts = { url = "ftp://127.0.0.1/" } })
		assert.truthy(r.err:find("only http", 1, true), r.err)
		-- a port nobody listens on: the backend's, once it is stopped
		local url = hb.url
		hb:stop()
		r = ask(cl, { op = "request", opts = { url = url .. "/echo" } })
		assert.truthy(r.err and #r.err > 0)
		local st = ask(cl, { op = "stats" }).stats
		assert.is_true(st.timeouts >= 1)
		assert.is_true(st.errors >= 3)
		assert.are.equal(0, st.in_flight)
	end)

	it("does not stop the server while a request waits, and drops it with its session", function()
		local hb = T.start_http_backend()
		local srv = start()
		local a = T.connect(srv, "udp")
		local b = T.connect(srv, "udp")
		a:wait_open()
		b:wait_open()
		assert(a:send(json.encode({ op = "request", then_send = true,
			opts = { url = hb.url .. "/slow?ms=30000", timeout_ms = 60000 } })))
		-- b is answered while a's request is in flight
		T.wait(function() return ask(b, { op = "stats" }, 5000).stats.in_flight == 1 end, 5000, a, b)
		a:close()
		T.wait(function()
			local st = ask(b, { op = "stats" }).stats
			return st.in_flight == 0 and st.aborted == 1
		end, 5000, a, b)
		assert.are.equal(0, #a.messages) -- its callback never went on
	end)
end)
