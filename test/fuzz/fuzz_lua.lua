-- fuzz_lua.lua - a fuzz driver for the Lua side's parsers of untrusted
-- bytes, run by LuaJIT (no libFuzzer for Lua: a deterministic mutator over
-- a seed corpus built here, with dictionaries of the formats' tokens).
--
--   luajit test/fuzz/fuzz_lua.lua [--iterations N] [--seconds S]
--                                 [--seed K] [--only NAME] ROOT
--
-- ROOT is the repository (lualib/ and service/ are loaded from it). Each
-- iteration takes one target in turn, mutates one of its seeds (or a
-- result kept from earlier: inputs that a decoder accepted are added to
-- the pool, a poor man's coverage feedback), and calls the target under
-- pcall. A run stops after N iterations or S seconds, whichever is first,
-- and prints "fuzz_lua: N inputs ran clean in T s (per target: name
-- count (accepted: inputs the target took as valid), ...)".
--
-- Targets and what is checked (anything else is a failure: the input is
-- printed as a Lua string literal and the exit status is 1):
--   sync_states, sync_frame  lualib/moongate/sync.lua decode_states and
--       decode_frame: never raise; either (number, list of entries with
--       the documented fields, re-encoding to the same bytes) or
--       (nil, a string); is_states/is_frame agree with the first byte.
--   json       lualib/moongate/json.lua decode: never raises; a value or
--       (nil, string).
--   handshake  service/handshake.lua handshake(hello, peer): never
--       raises; accepts (nothing, or true) or refuses with
--       (false, string reason, number code).
--   login      service/login.lua connect(session, hello) and message:
--       never raise; connect accepts or refuses with (false, string,
--       number); a cookie in a hello is checked, never trusted.
--   room       service/room.lua connect and message (the ops: rooms,
--       create, join, leave, logout, inputs, states) from a logged-in
--       player: never raise; every reply sent is valid JSON with an op.
--   admin      lualib/moongate/admin.lua run(line): never raises; returns
--       (boolean, string).
--
-- The server's C runtime (moongate.core) is replaced by stubs: virtual
-- time, a log that checks its arguments, relay and frames objects that
-- accept what the real ones take. Sessions are tables with the methods
-- services call. The services are the real files.
local ROOT, iterations, seconds, seed, only = nil, 20000, nil, 1, nil
do
	local i = 1
	while i <= #arg do
		local a = arg[i]
		if a == "--iterations" then
			iterations = tonumber(arg[i + 1]); i = i + 1
		elseif a == "--seconds" then
			seconds = tonumber(arg[i + 1]); i = i + 1
		elseif a == "--seed" then
			seed = tonumber(arg[i + 1]); i = i + 1
		elseif a == "--only" then
			only = arg[i + 1]; i = i + 1
		else
			ROOT = a
		end
		i = i + 1
	end
end
if not ROOT or not iterations then
	io.stderr:write("usage: luajit fuzz_lua.lua [--iterations N] [--seconds S] "
		.. "[--seed K] [--only NAME] ROOT\n")
	os.exit(2)
end
package.path = ROOT .. "/lualib/?.lua;" .. ROOT .. "/lualib/?/init.lua;"
	.. ROOT .. "/service/?.lua;" .. package.path

local bit = require "bit"
local char, byte, sub, rep = string.char, string.byte, string.sub, string.rep
local fmt = string.format

-- ---- the runtime's stubs ------------------------------------------------------

local clock_ms = 1000000
local log_lines = 0

local function check(cond, what)
	if not cond then
		error({ fuzz_check = what }, 2)
	end
end

local timer_mt = { __index = { cancel = function() end } }
local function new_timer() return setmetatable({}, timer_mt) end

local relay_mt = { __index = {} }
for _, m in ipairs { "add", "remove", "put", "position", "unposition", "flush", "stats" } do
	relay_mt.__index[m] = function(self, ...)
		return true
	end
end
local frames_mt = { __index = {
	frame = function(self) return self.cur end,
	next = function(self) return self.cur end,
	step = function(self) self.cur = self.cur + 1; return true end,
	catch_up = function() return true end,
	add = function() return true end,
	remove = function() return true end,
	input = function(self, id, data)
		check(type(data) == "string", "frames:input data")
		return true
	end,
	stats = function() return {} end,
} }

local core = {
	now = function() return clock_ms end,
	time = function() return clock_ms / 1000 end,
	log = function(level, msg, keys)
		check(type(level) == "string", "log level")
		check(type(msg) == "string", "log message")
		check(keys == nil or type(keys) == "table", "log keys")
		log_lines = log_lines + 1
	end,
	settings = function(name)
		check(type(name) == "string", "settings name")
		return {}
	end,
	after = function(ms, fn)
		check(type(ms) == "number" and type(fn) == "function", "after")
		return new_timer()
	end,
	every = function(ms, fn)
		check(type(ms) == "number" and ms >= 0 and type(fn) == "function", "every")
		return new_timer()
	end,
	relay = function(opts) return setmetatable({ opts = opts }, relay_mt) end,
	frames = function(opts) return setmetatable({ opts = opts, cur = 0 }, frames_mt) end,
	sign = function(data, context)
		check(type(data) == "string" and type(context) == "string", "sign")
		-- a stand-in MAC: 32 bytes that depend on every byte of data
		local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a }
		for i = 1, #data do
			local k = (i - 1) % 4 + 1
			h[k] = bit.bxor(bit.rol(h[k], 5) + byte(data, i), h[(k % 4) + 1])
		end
		local out = {}
		for i = 1, 8 do
			local v = h[(i - 1) % 4 + 1] + i * 0x9e3779b9
			out[i] = char(bit.band(bit.rshift(v, 0), 255), bit.band(bit.rshift(v, 8), 255),
				bit.band(bit.rshift(v, 16), 255), bit.band(bit.rshift(v, 24), 255))
		end
		return table.concat(out)
	end,
	broadcast = function(sessions, data, unreliable)
		check(type(sessions) == "table" and type(data) == "string", "broadcast")
		return #sessions
	end,
	stats = function() return {} end,
	sessions = function() return {} end,
}
core.verify = function(data, tag, context)
	check(type(data) == "string" and type(tag) == "string", "verify")
	return core.sign(data, context) == tag
end
package.preload["moongate.core"] = function() return core end

local moongate = require "moongate"
local json = require "moongate.json"
local cjson = require "cjson"
local sync = require "moongate.sync"
local admin = require "moongate.admin"
local handshake = require "handshake"
local login = require "login"
local room = require "room"

-- A session as the services see it: what they send is checked to be JSON
-- with an op (room) or kept.
local session_mt = { __index = {} }
local next_sid = 0x100
local function new_session(addr)
	next_sid = next_sid + 1
	return setmetatable({ sid = next_sid, peer = addr or "udp 127.0.0.1:40000",
		open = true, sent = 0 }, session_mt)
end
function session_mt.__index.id(self) return self.sid end
function session_mt.__index.alive(self) return self.open end
function session_mt.__index.addr(self) return self.peer end
function session_mt.__index.send(self, data)
	check(type(data) == "string", "session:send data")
	check(self.open, "send on a closed session")
	local ok, v = pcall(cjson.decode, data)
	check(ok and type(v) == "table" and type(v.op) == "string",
		"a service sent something other than a JSON op: " .. data:sub(1, 80))
	self.sent = self.sent + 1
	return true
end
function session_mt.__index.send_unreliable(self, data)
	check(type(data) == "string", "send_unreliable data")
	return true
end
function session_mt.__index.close(self, code, reason)
	check(type(code) == "number" and (reason == nil or type(reason) == "string"),
		"session:close arguments")
	self.open = false
end

-- ---- encoders for seeds and round trips ----------------------------------------

local function u16(v) return char(v % 256, math.floor(v / 256) % 256) end
local function u32(v)
	return char(v % 256, math.floor(v / 256) % 256, math.floor(v / 65536) % 256,
		math.floor(v / 16777216) % 256)
end
local function var(v) -- LEB128
	local t = {}
	while v >= 128 do
		t[#t + 1] = char(v % 128 + 128)
		v = math.floor(v / 128)
	end
	t[#t + 1] = char(v)
	return table.concat(t)
end
local function enc_states(tick, list)
	local t = { "S", u32(tick), char(#list) }
	for _, e in ipairs(list) do
		t[#t + 1] = var(e.id) .. var(#e.data) .. e.data
	end
	return table.concat(t)
end
local function enc_frame(frame, list)
	local t = { "F", u32(frame), u16(#list) }
	for _, e in ipairs(list) do
		t[#t + 1] = u32(e.id) .. u16(#e.data) .. e.data
	end
	return table.concat(t)
end

-- ---- the mutator -----------------------------------------------------------------

local json_dict = { "{", "}", "[", "]", ",", ":", '"', "\\", "\\u0000", "\\ud800",
	"null", "true", "false", "0", "-0", "1e999", "-1e999", "1e-999", "0.5", "4294967296",
	"9007199254740993", '"op"', '"join"', '"create"', '"leave"', '"rooms"', '"logout"',
	'"room"', '"mode"', '"relay"', '"lockstep"', '"capacity"', '"meta"', '"params"',
	'"after"', '"frame"', '"cookie"', '"name"', '"v"', '"__index"', rep("[", 70),
	rep("{\"a\":", 70), '""', '"\255\254"', "\0" }
local line_dict = { " ", "\t", "help", "stats", "sessions", "kick", "reload", "rooms",
	"quit", "\r", "%", "%s", "%d", "\0", rep("x", 300) }

local function rnd(n) return math.random(n) end

local function mutate(s, dict)
	local n = rnd(4)
	for _ = 1, n do
		local len = #s
		local op = rnd(9)
		local pos = len > 0 and rnd(len) or 1
		if op == 1 and len > 0 then     -- flip a bit
			local b = byte(s, pos)
			s = sub(s, 1, pos - 1) .. char(bit.bxor(b, bit.lshift(1, rnd(8) - 1))) .. sub(s, pos + 1)
		elseif op == 2 and len > 0 then -- set a byte
			s = sub(s, 1, pos - 1) .. char(rnd(256) - 1) .. sub(s, pos + 1)
		elseif op == 3 then             -- insert a token
			s = sub(s, 1, pos - 1) .. dict[rnd(#dict)] .. sub(s, pos)
		elseif op == 4 and len > 0 then -- delete a range
			s = sub(s, 1, pos - 1) .. sub(s, pos + rnd(8))
		elseif op == 5 and len > 0 then -- duplicate a range
			local e = math.min(len, pos + rnd(16))
			s = sub(s, 1, e) .. sub(s, pos, e) .. sub(s, e + 1)
		elseif op == 6 then             -- truncate
			s = sub(s, 1, pos - 1)
		elseif op == 7 and len > 0 then -- small arithmetic
			local b = byte(s, pos)
			s = sub(s, 1, pos - 1) .. char((b + rnd(7) - 4) % 256) .. sub(s, pos + 1)
		elseif op == 8 and len > 0 then -- an interesting byte
			local v = ({ 0, 1, 0x7f, 0x80, 0xff, 0x53, 0x46 })[rnd(7)]
			s = sub(s, 1, pos - 1) .. char(v) .. sub(s, pos + 1)
		else                            -- append a token
			s = s .. dict[rnd(#dict)]
		end
	end
	if #s > 70000 then
		s = sub(s, 1, 70000)
	end
	return s
end

-- ---- targets -----------------------------------------------------------------------

local targets = {}

local function is_reason(v) return type(v) == "string" and #v > 0 end

targets.sync_states = {
	dict = json_dict,
	seeds = {
		enc_states(7, {}),
		enc_states(1, { { id = 1, data = "abc" } }),
		enc_states(0xffffffff, { { id = 5, data = "" },
			{ id = 300, data = rep("z", 300) }, { id = 0xffffffff, data = "q" } }),
		"S", "F\0\0\0\0\0\0",
	},
	run = function(s)
		check(sync.is_states(s) == (byte(s, 1) == 0x53), "is_states")
		local tick, list = sync.decode_states(s)
		if tick == nil then
			check(is_reason(list), "decode_states: nil without a reason")
			return false
		end
		check(type(tick) == "number" and type(list) == "table", "decode_states types")
		for _, e in ipairs(list) do
			check(type(e.id) == "number" and e.seq == tick and
				type(e.data) == "string", "decode_states entry")
		end
		check(enc_states(tick, list) == s, "decode_states does not re-encode")
		return true
	end,
}

targets.sync_frame = {
	dict = json_dict,
	seeds = {
		enc_frame(0, {}),
		enc_frame(3, { { id = 1, data = "Imove" }, { id = 2, data = "" } }),
		enc_frame(0xfffffffe, { { id = 0xffffffff, data = rep("q", 70) } }),
		"F",
	},
	run = function(s)
		check(sync.is_frame(s) == (byte(s, 1) == 0x46), "is_frame")
		local frame, list = sync.decode_frame(s)
		if frame == nil then
			check(is_reason(list), "decode_frame: nil without a reason")
			return false
		end
		check(type(frame) == "number" and type(list) == "table", "decode_frame types")
		for _, e in ipairs(list) do
			check(type(e.id) == "number" and type(e.data) == "string", "decode_frame entry")
		end
		check(enc_frame(frame, list) == s, "decode_frame does not re-encode")
		return true
	end,
}

targets.json = {
	dict = json_dict,
	seeds = { '{"op":"join","room":1}', '[1,2,3]', '"x"', '{"a":{"b":[null,true]}}', "" },
	run = function(s)
		local v, err = json.decode(s)
		if v == nil then
			check(is_reason(err), "json.decode: nil without a reason")
			return false
		end
		return true
	end,
}

local function check_refusal(what, ok, reason, code)
	if ok == false then
		check(is_reason(reason), what .. ": a refusal without a reason")
		check(type(code) == "number", what .. ": a refusal without a code")
		return true
	end
	check(ok == nil or ok == true, what .. ": returned " .. tostring(ok))
	return false
end

targets.handshake = {
	dict = json_dict,
	seeds = { '{"v":1}', '{"v":0}', '{"v":99}', '{"v":"1"}', "{}", "", '{"v":1e999}' },
	run = function(s)
		clock_ms = clock_ms + 1000 -- the rate limit refills
		local peer = { addr = "10.0.0." .. rnd(4) .. ":5000" }
		local ok, reason, code = handshake.handshake(s, peer)
		return not check_refusal("handshake", ok, reason, code)
	end,
}

local function login_session(hello)
	local ss = new_session()
	local ok, reason, code = login.connect(ss, hello)
	return ss, check_refusal("login.connect", ok, reason, code)
end

targets.login = {
	dict = json_dict,
	seeds = {
		'{"name":"ann"}', '{"name":"a-b_c"}', '{"name":""}', '{"name":1}',
		'{"cookie":"1.6465763a616e6e.1.99999999999.00"}', '{"cookie":5}', "[]", "",
	},
	run = function(s)
		local ss, refused = login_session(s)
		if not refused and ss.player then
			login.message(ss, s, true)
			login.message(ss, '{"op":"logout"}', true)
			login.close(ss)
		end
		return not refused
	end,
}

targets.room = {
	dict = json_dict,
	seeds = {
		'{"op":"create","mode":"relay","capacity":4,"meta":{"map":"x"}}',
		'{"op":"create","mode":"lockstep"}',
		'{"op":"join","room":1}', '{"op":"join","mode":"relay"}',
		'{"op":"leave"}', '{"op":"rooms","after":0,"mode":"relay"}', '{"op":"logout"}',
		'{"op":"create","mode":"relay","capacity":1.5}', "Iinput", "state bytes",
	},
	run = function(s)
		local ss = login_session('{"name":"p' .. rnd(3) .. '"}')
		if not ss.player then
			return false
		end
		room.connect(ss, s)
		room.message(ss, s, true, 1)
		room.message(ss, s, false, rnd(100))
		room.message(ss, '{"op":"create","mode":"lockstep"}', true, 2)
		room.message(ss, s, true, 3)
		room.message(ss, "I" .. s, true, 4)
		room.offline(ss)
		room.resume(ss)
		if rnd(2) == 1 then
			room.message(ss, '{"op":"leave"}', true, 5)
		end
		room.close(ss)
		login.close(ss)
		return true
	end,
}

targets.admin = {
	dict = line_dict,
	seeds = { "help", "  help  ", "rooms", "nosuch arg", "", "help extra args" },
	run = function(s)
		local ok, out = admin.run(s)
		check(type(ok) == "boolean" and type(out) == "string", "admin.run results")
		return ok
	end,
}

-- ---- the loop ------------------------------------------------------------------------

local names = {}
for name in pairs(targets) do
	if not only or only == name then
		names[#names + 1] = name
	end
end
table.sort(names)
if #names == 0 then
	io.stderr:write("fuzz_lua: no target named ", tostring(only), "\n")
	os.exit(2)
end

math.randomseed(seed)
local counts, accepted, pools = {}, {}, {}
for _, name in ipairs(names) do
	counts[name] = 0
	accepted[name] = 0
	pools[name] = {}
	for i, s in ipairs(targets[name].seeds) do
		pools[name][i] = s
	end
end

local POOL_MAX = 256
local function fail(name, input, err)
	local what = type(err) == "table" and err.fuzz_check or tostring(err)
	io.stderr:write(fmt("fuzz_lua: %s failed: %s\n  input: %q\n", name, what, input))
	os.exit(1)
end

local started = os.clock()
local total = 0
for it = 1, iterations do
	local name = names[(it - 1) % #names + 1]
	local t, pool = targets[name], pools[name]
	local input = pool[rnd(#pool)]
	if rnd(8) == 1 and #pool > 1 then -- splice two
		local other = pool[rnd(#pool)]
		input = sub(input, 1, rnd(#input + 1) - 1) .. sub(other, rnd(#other + 1))
	end
	input = mutate(input, t.dict)
	local ok, res = xpcall(t.run, function(e)
		if type(e) == "table" then
			return e
		end
		return debug.traceback(tostring(e), 2)
	end, input)
	if not ok then
		fail(name, input, res)
	end
	if res and #pool < POOL_MAX then
		pool[#pool + 1] = input
	elseif res then
		pool[rnd(POOL_MAX)] = input
	end
	counts[name] = counts[name] + 1
	accepted[name] = accepted[name] + (res and 1 or 0)
	total = total + 1
	clock_ms = clock_ms + 50
	if seconds and it % 256 == 0 and os.clock() - started >= seconds then
		break
	end
end

local per = {}
for _, name in ipairs(names) do
	per[#per + 1] = fmt("%s %d (%d accepted)", name, counts[name], accepted[name])
end
print(fmt("fuzz_lua: %d inputs ran clean in %.1f s (per target: %s)", total,
	os.clock() - started, table.concat(per, ", ")))
