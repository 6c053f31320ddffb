-- moongate.test_client: the test clients of require "moongate.test"
-- (docs/LUA_API.md; the API is in test.lua's header comment): T.connect
-- and the cl: methods (step, send, wait_open, wait_message, wait_op,
-- wait_login, wait_close...), T.wait and T.wait_open. Loaded by
-- moongate.test, which gets back pump(ms) (step every live client: its
-- waits on processes and logs call it), close_all and release_all (for
-- T.stop_all).
return function(T, h)
local client = require "moongate.client"
local now_ms, poll_fds, DEFAULT_WAIT = h.now_ms, h.poll_fds, h.DEFAULT_WAIT

local clients = {}   -- test clients not yet released, in order

local Client = {}
Client.__index = Client

local function live_clients()
	local live = {}
	for _, cl in ipairs(clients) do
		if cl.c then
			live[#live + 1] = cl
		end
	end
	return live
end

function T.connect(target, transport, hello, opts)
	local url = target
	if type(target) == "table" then
		url = target:url(transport or "udp")
	elseif type(target) ~= "string" then
		error("connect: a server or a url expected", 2)
	end
	if opts and opts.worker then
		-- a worker hint: the handshake goes to that worker slot
		local o = {}
		for k, v in pairs(opts) do o[k] = v end
		url = url .. (url:find("?", 1, true) and "&" or "?") .. "worker=" .. o.worker
		o.worker = nil
		opts = o
	end
	if type(target) == "table" and target.key then
		-- pin the server's key (handshake v2) unless told otherwise
		local o = {}
		for k, v in pairs(opts or {}) do o[k] = v end
		if o.server_key == nil then
			o.server_key = target.key
		elseif o.server_key == false then
			o.server_key = nil
		end
		opts = o
	end
	local c, err = client.connect(url, hello or "", opts)
	if not c then
		return nil, err
	end
	local cl = setmetatable({ c = c, url = url, opened = false, messages = {},
		datagrams = {}, events = {}, read = 0, taken = {}, decoded = {} }, Client)
	clients[#clients + 1] = cl
	return cl
end

function Client:record(ev)
	self.events[#self.events + 1] = ev
	if ev.type == "open" then
		self.opened = true
	elseif ev.type == "message" then
		self.messages[#self.messages + 1] = ev.data
	elseif ev.type == "datagram" then
		self.datagrams[#self.datagrams + 1] = { data = ev.data, seq = ev.seq }
	elseif ev.type == "close" then
		self.closed = { code = ev.code, reason = ev.reason, remote = ev.remote }
	elseif ev.type == "moved" then
		self.moves = (self.moves or 0) + 1
	end
end

-- Poll and record; waits up to ms (default 0).
function Client:step(ms)
	if not self.c then
		return {}
	end
	local evs = self.c:step(ms or 0)
	for _, ev in ipairs(evs) do
		self:record(ev)
	end
	return evs
end

function Client:send(s) return self.c:send(s) end
function Client:send_unreliable(s) return self.c:send_unreliable(s) end
function Client:close(code, reason) return self.c:close(code, reason) end
function Client:state() return self.c and self.c:state() or "released" end
function Client:stats() return self.c:stats() end

function Client:release()
	if self.c then
		self.c:release()
		self.c = nil
	end
end

function Client:describe()
	local s = ("%s: %s, %d messages (%d read), %d datagrams"):format(
		self.url, self:state(), #self.messages, self.read, #self.datagrams)
	if self.closed then
		s = s .. (", closed %d %q%s"):format(self.closed.code,
			self.closed.reason, self.closed.remote and " by the server" or "")
	end
	return s
end

-- Step the clients once: drain; unless that brought events, block until
-- one of them has input or a timer due, or ms passed (at most SLICE_MS,
-- so that a condition on something else is looked at often enough).
local SLICE_MS = 50

local function step_clients(list, ms)
	ms = math.min(ms, SLICE_MS)
	local now = client.now()
	local fds = {}
	for _, cl in ipairs(list) do
		if cl.c then
			if #cl:step(0) > 0 then
				ms = 0
			end
			local fd = cl.c:fd()
			if fd >= 0 then
				fds[#fds + 1] = fd
			end
			local due = math.ceil((cl.c:check(now) - now) / 1000)
			ms = math.min(ms, math.max(due, 0))
		end
	end
	if ms > 0 then
		poll_fds(fds, ms)
		for _, cl in ipairs(list) do
			cl:step(0)
		end
	end
end

local function pump(ms)
	step_clients(live_clients(), ms)
end

local function wait(cond, ms, what, list, level)
	ms = ms or DEFAULT_WAIT
	local deadline = now_ms() + ms
	while true do
		local r = cond()
		if r then
			return r
		end
		local left = deadline - now_ms()
		if left <= 0 then
			local lines = {}
			for _, cl in ipairs(list) do
				lines[#lines + 1] = "  " .. cl:describe()
			end
			error(("timed out after %d ms waiting for %s%s"):format(ms, what,
				#lines > 0 and "\n" .. table.concat(lines, "\n") or ""), level)
		end
		if #list > 0 then
			step_clients(list, left)
		else
			poll_fds({}, math.min(left, 10))
		end
	end
end

-- (No tail calls to wait: the error level counts this frame.)
function T.wait(cond, ms, ...)
	local r = wait(cond, ms, "a condition", { ... }, 3)
	return r
end

-- Wait until every client of list is open (stepping them all).
function T.wait_open(list, ms)
	wait(function()
		for _, cl in ipairs(list) do
			if not cl.opened then return false end
		end
		return true
	end, ms or DEFAULT_WAIT, "every client open", list, 3)
end

function Client:wait(cond, ms, what)
	local r = wait(function() return cond(self) end, ms, what or "a condition",
		{ self }, 3)
	return r
end

function Client:wait_open(ms)
	local r = wait(function()
		if self.opened then
			return true
		end
		if self.closed then
			error(("closed before open: %d %q"):format(self.closed.code,
				self.closed.reason), 4)
		end
	end, ms, "open", { self }, 3)
	return r
end

-- Reading: self.read messages are read, then the first unread one;
-- wait_op may take a message further on (self.taken[i]), which the
-- next wait_message then passes over.
local function take(self, i)
	self.taken[i] = true
	while self.taken[self.read + 1] do
		self.taken[self.read + 1] = nil
		self.read = self.read + 1
	end
end

function Client:wait_message(ms)
	local m = wait(function()
		if self.read < #self.messages then
			local i = self.read + 1
			take(self, i)
			return { self.messages[i] }
		end
		if self.closed then
			error(("closed while waiting for message %d: %d %q"):format(
				self.read + 1, self.closed.code, self.closed.reason), 4)
		end
	end, ms, "message " .. (self.read + 1), { self }, 3)
	return m[1]
end

-- Message i decoded when it is a JSON object, else false (kept: a long
-- run of frames is not decoded again on every poll).
local function decoded(self, i)
	local t = self.decoded[i]
	if t == nil then
		local s = self.messages[i]
		t = s:byte(1) == 123 and require("moongate.json").decode(s) -- '{'
		if type(t) ~= "table" then
			t = false
		end
		self.decoded[i] = t
	end
	return t
end

-- The first unread message that is a JSON object with this "op" (the
-- shipped services' messages, docs/SERVICES.md), decoded. The messages
-- before it stay unread: a later wait_message or wait_op gets them.
function Client:wait_op(op, ms)
	local m = wait(function()
		for i = self.read + 1, #self.messages do
			if not self.taken[i] then
				local t = decoded(self, i)
				if t and t.op == op then
					take(self, i)
					return { t }
				end
			end
		end
		if self.closed then
			error(("closed while waiting for op %q: %d %q"):format(op,
				self.closed.code, self.closed.reason), 4)
		end
	end, ms, "a message with op " .. op, { self }, 3)
	return m[1]
end

-- The login service's {"op":"login"} (docs/SERVICES.md, "login"). The
-- session opens before the login is decided: a refusal is a close after
-- open, which this reports with its code and reason.
function Client:wait_login(ms)
	local m = wait(function()
		for i = self.read + 1, #self.messages do
			if not self.taken[i] then
				local t = decoded(self, i)
				if t and t.op == "login" then
					take(self, i)
					return { t }
				end
			end
		end
		if self.closed then
			error(("login refused%s: %d %q"):format(
				self.opened and " (after open)" or "", self.closed.code,
				self.closed.reason), 4)
		end
	end, ms, "the login message", { self }, 3)
	return m[1]
end

function Client:wait_close(ms)
	local r = wait(function() return self.closed end, ms, "close", { self }, 3)
	return r
end

-- T.stop_all: close every open client (their sessions end at once on the
-- server), later release them all.
local function close_all()
	for _, cl in ipairs(clients) do
		if cl.c and not cl.closed then
			cl.c:close(0, "test teardown")
		end
	end
end

local function release_all()
	for _, cl in ipairs(clients) do
		cl:release()
	end
	clients = {}
end

return { pump = pump, close_all = close_all, release_all = release_all }
end
