-- moongate.admin: the commands of the admin console (docs/LUA_API.md,
-- "Admin console"). The console itself (a Unix socket or a loopback TCP
-- port, one command per line) is in C; each line comes here.
--
--   moongate.command("kick", "kick ID: close a session", function(args)
--       local s = moongate.session(tonumber(args[1]))
--       if not s then return nil, "no such session" end
--       s:close(4001, "kicked by an operator")
--       return "kicked"
--   end)
--
-- A command returns its reply text, or nil and an error. It runs in a
-- coroutine and may wait (moongate.sleep, redis, http): the console's reply
-- comes when it returns, and that client's next command waits behind it.
-- Built in (and never waiting): help, status, sessions, close, stats,
-- reload. Services add their own (room: rooms, room close).
local M = {}

local commands = {}
local names = {}
M.reply_max = 65536  -- bytes of one reply; longer ones are cut with a note
M.CLOSE_CODE = 4000  -- the code `close ID` closes a session with

local staged -- during a reload: the commands the new code registers

-- The loader, around running new code: commands go to the side, then in
-- (accepted) or away (refused).
function M.stage()
	staged = {}
end

function M.unstage(accept)
	local list = staged
	staged = nil
	if accept then
		for _, c in ipairs(list) do
			M.command(c[1], c[2], c[3])
		end
	end
end

function M.command(name, help, fn)
	assert(type(name) == "string" and name:match("^[%w_%-]+$"),
		"command: a name of letters, digits, _ and - expected")
	assert(type(help) == "string", "command: a help line expected")
	assert(type(fn) == "function", "command: a function expected")
	if staged then
		staged[#staged + 1] = { name, help, fn }
		return
	end
	if not commands[name] then
		names[#names + 1] = name
		table.sort(names)
	end
	commands[name] = { help = help, fn = fn }
end

-- Run one console line: returns ok (boolean) and the reply text.
function M.run(line)
	local args = {}
	for w in line:gmatch("%S+") do
		args[#args + 1] = w
	end
	local name = table.remove(args, 1)
	if not name then
		return true, ""
	end
	local c = commands[name]
	if not c then
		return false, "unknown command '" .. name .. "' (try help)"
	end
	local ok, out, err = xpcall(function() return c.fn(args) end, debug.traceback)
	if not ok then
		return false, "command " .. name .. " failed: " .. tostring(out)
	end
	if out == nil and err ~= nil then
		return false, tostring(err)
	end
	out = out == nil and "" or tostring(out)
	if #out > M.reply_max then
		out = out:sub(1, M.reply_max) .. "\n... (cut at " .. M.reply_max .. " bytes)"
	end
	return true, out
end

M.command("help", "help: the commands", function()
	local out = {}
	for _, n in ipairs(names) do
		out[#out + 1] = commands[n].help
	end
	return table.concat(out, "\n")
end)

-- The built-in commands need the server's runtime.
local ok, moongate = pcall(require, "moongate")
if ok and moongate.in_server then
	local loader = require "moongate.loader"
	local loaded = moongate.time()

	-- Clock ticks per second of /proc/self/stat (sysconf(_SC_CLK_TCK):
	-- 100 on every Linux the kernel's USER_HZ fixed).
	local function clk_tck()
		local okf, ffi = pcall(require, "ffi")
		if not okf then
			return 100
		end
		pcall(ffi.cdef, "long sysconf(int name);")
		local okc, hz = pcall(function() return tonumber(ffi.C.sysconf(2)) end) -- _SC_CLK_TCK
		return okc and hz and hz > 0 and hz or 100
	end

	-- Seconds since the server process started: its start time in
	-- /proc/self/stat (field 22, clock ticks since boot) against
	-- /proc/uptime. This module is loaded late (the first console command,
	-- or a service's moongate.command), so its own load time is only the
	-- fallback without /proc.
	local function uptime_s()
		local f = io.open("/proc/self/stat", "r")
		local stat = f and f:read("*a")
		if f then f:close() end
		local u = io.open("/proc/uptime", "r")
		local up = u and u:read("*n")
		if u then u:close() end
		-- after the command name, which is in parentheses and may hold any
		-- byte: fields 3 on
		local rest = stat and stat:match(".*%) (.*)$")
		if rest and up then
			local i, start = 3, nil
			for w in rest:gmatch("%S+") do
				if i == 22 then
					start = tonumber(w)
					break
				end
				i = i + 1
			end
			if start then
				return math.max(0, up - start / clk_tck())
			end
		end
		return moongate.time() - loaded
	end

	M.command("status", "status: uptime, sessions, Lua counters, reloads", function()
		local st = moongate.stats()
		return string.format(
			"uptime_s %d\nsessions %d\nlua_sessions %d\ntimers %d\ncallbacks %d\n" ..
			"errors %d\nslow %d\nmemory_kb %d\nreloads %d\nreloads_refused %d",
			uptime_s(), st.sessions, st.lua_sessions, st.timers,
			st.callbacks, st.errors, st.slow, st.memory_kb, loader.reloads,
			loader.refusals)
	end)

	M.command("sessions", "sessions: one line per session: id transport addr state rtt_ms [user]",
		function()
			local out = {}
			for _, s in ipairs(moongate.sessions()) do
				local addr = s:addr() or "-"
				local state = s:offline() and "offline" or "open"
				out[#out + 1] = string.format("%08x %s %s %s %.1f%s", s:id(),
					s:transport() or "-", addr, state, (s:rtt()) or 0,
					s.uid ~= nil and (" " .. tostring(s.uid)) or "")
			end
			table.sort(out)
			out[#out + 1] = #out .. " sessions"
			return table.concat(out, "\n")
		end)

	M.command("close", "close ID [reason]: close a session (ID in hex, as sessions shows it; code 4000)",
		function(args)
			local id = args[1] and tonumber((args[1]:gsub("^0[xX]", "")), 16)
			if not id then
				return nil, "usage: close ID [reason] (ID in hex, as sessions shows it)"
			end
			local s = moongate.session(id)
			if not s then
				return nil, "no session " .. args[1]
			end
			local reason = #args > 1 and table.concat(args, " ", 2) or "closed by an operator"
			local offline = s:offline()
			s:close(M.CLOSE_CODE, reason)
			return string.format("closing %08x: %d %s%s", id, M.CLOSE_CODE, reason,
				offline and " (offline: it ends when its client comes back or its grace runs out)"
				or "")
		end)

	-- stats [GROUP]: every counter of the server, "group.name value" a
	-- line, grouped in this order, names sorted within a group.
	local order = { gate = 1, net = 2, lua = 3, log = 4, admin = 5 }
	M.command("stats", "stats [GROUP]: every counter: gate, net, lua, log, admin (one 'group.name value' a line)",
		function(args)
			local all = moongate.server_stats()
			local want = args[1]
			if want and not all[want] then
				local have = {}
				for g in pairs(all) do have[#have + 1] = g end
				table.sort(have)
				return nil, "no counters in group '" .. want .. "' (groups: " ..
					table.concat(have, ", ") .. ")"
			end
			local groups = {}
			for g in pairs(all) do
				if not want or g == want then groups[#groups + 1] = g end
			end
			table.sort(groups, function(a, b)
				local oa, ob = order[a] or 99, order[b] or 99
				if oa ~= ob then return oa < ob end
				return a < b
			end)
			local out = {}
			for _, g in ipairs(groups) do
				local names = {}
				for n in pairs(all[g]) do names[#names + 1] = n end
				table.sort(names)
				for _, n in ipairs(names) do
					out[#out + 1] = string.format("%s.%s %.0f", g, n, all[g][n])
				end
			end
			return table.concat(out, "\n")
		end)

	-- top: the status page's figures, for a terminal
	M.command("top", "top: the status page's figures: sessions, RTT, loss, totals, closes by code, Lua callback time, the services' samples",
		function()
			local s = moongate.status()
			if not s then
				return nil, "no status in this process"
			end
			local out = {}
			local function add(...) out[#out + 1] = string.format(...) end
			add("node %s worker %s version %s up %d s", tostring(s.node), tostring(s.worker),
				tostring(s.version), s.uptime_s or 0)
			local ss = s.sessions
			add("sessions open %d offline %d handshake %d closing %d (udp %d tcp %d raw %d)",
				ss.open, ss.offline, ss.handshake, ss.closing, ss.udp, ss.tcp, ss.raw)
			add("rtt_ms p50 %.2f p90 %.2f p99 %.2f (%d sessions)", s.rtt_ms.p50, s.rtt_ms.p90,
				s.rtt_ms.p99, s.rtt_ms.n)
			add("loss p50 %.4f p90 %.4f p99 %.4f (%d sessions)", s.loss.p50, s.loss.p90,
				s.loss.p99, s.loss.n)
			local t = s.totals
			add("totals retransmissions %d segments_sent %d fec_recovered %d messages_in %d "
				.. "messages_out %d datagrams_in %d datagrams_out %d send_queue_bytes %d",
				t.retransmissions, t.segments_sent, t.fec_recovered, t.messages_in,
				t.messages_out, t.datagrams_in, t.datagrams_out, t.send_queue_bytes)
			local codes = {}
			for code in pairs(s.closes or {}) do codes[#codes + 1] = tonumber(code) end
			table.sort(codes)
			local cl = {}
			for _, code in ipairs(codes) do cl[#cl + 1] = code .. "=" .. s.closes[tostring(code)] end
			add("closes %s", #cl > 0 and table.concat(cl, " ") or "none")
			local lua = s.lua or {}
			table.sort(lua, function(a, b) return a.ms > b.ms end)
			for _, c in ipairs(lua) do
				add("lua %s.%s runs %d ms %.1f", c.service, c.callback, c.runs, c.ms)
			end
			for _, m in ipairs(type(s.services) == "table" and s.services or {}) do
				local l = {}
				for k, v in pairs(m.labels or {}) do l[#l + 1] = k .. "=" .. tostring(v) end
				table.sort(l)
				if not m.name:match("_bucket$") then
					add("%s%s %s", m.name, #l > 0 and "{" .. table.concat(l, ",") .. "}" or "",
						tostring(m.value))
				end
			end
			return table.concat(out, "\n")
		end)

	M.command("reload", "reload: reload every service file that changed", function()
		local rep = loader.reload(moongate.log)
		local line = loader.summary(rep)
		if #rep.refused > 0 then
			return nil, line
		end
		return line
	end)
end

return M
