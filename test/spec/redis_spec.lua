-- moongate.redis against a real redis-server (T.start_redis): calls and
-- pipelines from callbacks that wait, replies as Lua values, errors, a
-- Redis that stops and comes back, a timeout, pub/sub. Run by ctest through
-- busted.
local T = require "moongate.test"
local json = require "moongate.json"

-- "rsvc": every message is a JSON command; the answer is JSON.
local RSVC = [[
local moongate = require "moongate"
local redis = require "moongate.redis"
local json = require "moongate.json"
local svc = {}

-- a reply as JSON can carry it
local function conv(v)
	if v == nil then return "<nil>" end
	if v == redis.null then return "<null>" end
	if type(v) == "table" then
		local t = {}
		for i = 1, #v do t[i] = conv(v[i]) end
		-- a table of nils and nulls: #v is its length as Redis gave it
		return t
	end
	return v
end

function svc.message(session, data)
	local cmd = json.decode(data)
	local out
	if cmd.op == "call" then
		local v, err = redis.connect():call(unpack(cmd.args))
		out = { v = conv(v), err = err }
	elseif cmd.op == "pipeline" then
		local vals, errs = redis.connect():pipeline(cmd.cmds)
		local v = {}
		for i = 1, #cmd.cmds do v[i] = conv(vals and vals[i]) end
		-- errs has a hole where a command succeeded: string keys (JSON
		-- arrays have none, and json.encode refuses a sparse one)
		local e = {}
		for i, err in pairs(errs or {}) do e[tostring(i)] = err end
		out = { v = v, errs = e }
	elseif cmd.op == "subscribe" then
		redis.subscribe(cmd.channel, function(msg, channel)
			moongate.sleep(1) -- a subscriber's callback may wait
			session:send(json.encode({ msg = msg, channel = channel }))
		end)
		out = { ok = true }
	elseif cmd.op == "noredis" then
		local ok, err = pcall(redis.connect)
		out = { ok = ok, err = tostring(err) }
	elseif cmd.op == "stats" then
		out = { stats = moongate.server_stats().redis }
	elseif cmd.op == "ping" then
		out = { pong = true }
	end
	session:send(json.encode(out))
	return true
end

return svc
]]

local function start(rd, config)
	config = config or {}
	if rd then
		config.redis = config.redis or {}
		config.redis.url = rd.url
	end
	return T.start_server{ services = { "rsvc" }, inline = { rsvc = RSVC },
		config = config }
end

local function ask(cl, t, ms)
	local before = #cl.messages
	assert(cl:send(json.encode(t)))
	T.wait(function() return #cl.messages > before end, ms or 5000, cl)
	return json.decode(cl.messages[before + 1])
end

describe("moongate.redis", function()
	after_each(function() T.stop_all() end)

	it("calls and pipelines from a callback, with replies as Lua values", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert.are.equal("OK", ask(cl, { op = "call", args = { "SET", "k", "v1" } }).v)
		assert.are.equal("v1", ask(cl, { op = "call", args = { "GET", "k" } }).v)
		assert.are.equal("v1", rd:cli("GET", "k")) -- really in Redis
		assert.are.equal("<nil>", ask(cl, { op = "call", args = { "GET", "nothing" } }).v)
		assert.are.equal(3, ask(cl, { op = "call", args = { "INCRBY", "n", 3 } }).v)
		assert.are.same({ "v1", "<null>", "3" },
			ask(cl, { op = "call", args = { "MGET", "k", "nothing", "n" } }).v)
		local r = ask(cl, { op = "call", args = { "INCR", "k" } })
		assert.are.equal("<nil>", r.v)
		assert.truthy(r.err:find("^ERR"), r.err)
		local p = ask(cl, { op = "pipeline", cmds = { { "SET", "a", "1" }, { "INCR", "a" },
			{ "LPUSH", "a", "x" }, { "GET", "a" } } })
		assert.are.same({ "OK", 2, "<nil>", "2" }, p.v)
		assert.truthy(p.errs["3"], json.encode(p.errs))
		local st = ask(cl, { op = "stats" }).stats
		assert.are.equal(1, st.up)
		assert.is_true(st.calls >= 10)
		assert.are.equal(0, st.in_flight)
	end)

	it("gives clear errors while Redis is down and works again when it is back, the server serving throughout", function()
		local rd = T.start_redis()
		local srv = start(rd, { redis = { backoff_max_ms = 200 } })
		local cl = T.connect(srv, "tcp")
		cl:wait_open()
		assert.are.equal("OK", ask(cl, { op = "call", args = { "SET", "k", "1" } }).v)
		rd:stop()
		local r
		T.wait(function()
			r = ask(cl, { op = "call", args = { "GET", "k" } })
			return r.err ~= nil
		end, 5000, cl)
		assert.truthy(r.err:find("connection lost") or r.err:find("is down"), r.err)
		-- the rest of the server goes on
		assert.is_true(ask(cl, { op = "ping" }).pong)
		r = ask(cl, { op = "call", args = { "GET", "k" } })
		assert.truthy(r.err:find("is down"), r.err)
		srv:wait_log("redis unix:.-trying again in %d+ ms", 5000)
		rd:start()
		T.wait(function()
			r = ask(cl, { op = "call", args = { "SET", "k", "2" } })
			return r.v == "OK"
		end, 5000, cl)
		assert.are.equal("2", ask(cl, { op = "call", args = { "GET", "k" } }).v)
		local st = ask(cl, { op = "stats" }).stats
		assert.is_true(st.connects >= 2)
		assert.is_true(st.disconnects >= 1)
	end)

	it("times a call out when Redis does not answer", function()
		local rd = T.start_redis()
		local srv = start(rd, { redis = { timeout_ms = 200 } })
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert.are.equal("OK", ask(cl, { op = "call", args = { "SET", "k", "1" } }).v)
		T.kill(rd.pid, 19) -- SIGSTOP: connected, silent
		local r = ask(cl, { op = "call", args = { "GET", "k" } })
		T.kill(rd.pid, 18) -- SIGCONT
		assert.truthy(r.err and r.err:find("timeout after 200 ms"), tostring(r.err))
		T.wait(function()
			return ask(cl, { op = "call", args = { "GET", "k" } }).v == "1"
		end, 5000, cl)
		assert.is_true(ask(cl, { op = "stats" }).stats.timeouts >= 1)
	end)

	it("delivers published messages to a subscriber's callback", function()
		local rd = T.start_redis()
		local srv = start(rd)
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		assert.is_true(ask(cl, { op = "subscribe", channel = "news" }).ok)
		-- the subscription is made in the background: publish until heard
		T.wait(function()
			return tonumber(rd:cli("PUBSUB", "NUMSUB", "news"):match("(%d+)$")) == 1
		end, 5000, cl)
		rd:cli("PUBLISH", "news", "hello")
		T.wait(function() return #cl.messages >= 2 end, 5000, cl)
		assert.are.same({ msg = "hello", channel = "news" }, json.decode(cl.messages[2]))
	end)

	it("says so when no Redis is configured", function()
		local srv = start(nil)
		local cl = T.connect(srv, "udp")
		cl:wait_open()
		local r = ask(cl, { op = "noredis" })
		assert.is_false(r.ok)
		assert.truthy(r.err:find("no Redis configured", 1, true), r.err)
	end)

	it("refuses a bad redis.url at start", function()
		assert.has_error(function()
			T.start_server{ services = { "echo" }, config = { redis = { url = "http://x" } } }
		end)
	end)
end)
