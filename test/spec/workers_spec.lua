-- workers = N (issue 17, first step): a supervisor and N worker processes
-- on the same ports, every session packet steered by the kernel (the
-- supervisor's reuseport group and its BPF program) to the worker that
-- owns the session, whatever address it comes from; a worker killed is
-- restarted and the others' players notice nothing; a lone server refuses
-- a port another one holds. Run by ctest through busted.
local T = require "moongate.test"
local ffi = require "ffi"
ffi.cdef [[ int shutdown(int fd, int how); ]]

local WHO = [[
local moongate = require "moongate"
local svc = {}
function svc.message(session, data, reliable)
	if data == "id" then
		session:send(tostring(session:id()))
	elseif data == "unknown" then
		session:send(tostring(moongate.server_stats().gate.unknown_session))
	elseif data == "handoffs" then
		local n = moongate.server_stats().net
		session:send(n.tcp_handed_off .. " " .. n.tcp_adopted)
	elseif reliable then
		session:send(data)
	else
		session:send_unreliable(data)
	end
	return true
end
return svc
]]

local function start(n, grace, extra)
	local cfg = { workers = n, session = { resume_grace_ms = grace or 0 } }
	for k, v in pairs(extra or {}) do cfg[k] = v end
	return T.start_server{ services = { "who" }, inline = { who = WHO }, config = cfg }
end

-- Ask cl something; its answer.
local function ask(cl, q, list)
	local before = #cl.messages
	assert(cl:send(q))
	T.wait(function() return #cl.messages > before end, 5000, unpack(list or { cl }))
	return cl.messages[before + 1]
end

local function worker_of(cl)
	return tonumber(ask(cl, "id")) % 256
end

describe("workers", function()
	after_each(function() T.stop_all() end)

	it("steer every session's packets to its worker, across address changes", function()
		local srv = start(2)
		local cls = {}
		for i = 1, 60 do
			cls[i] = T.connect(srv, "udp", "c" .. i)
		end
		T.wait_open(cls, 10000)
		local on = { [0] = {}, [1] = {} }
		for _, cl in ipairs(cls) do
			local w = worker_of(cl)
			assert.is_truthy(on[w], "worker " .. w)
			table.insert(on[w], cl)
		end
		assert.is_true(#on[0] > 0 and #on[1] > 0, ("%d and %d"):format(#on[0], #on[1]))
		-- every client moves to a new local port (a NAT rebinding) twice,
		-- echoing 10 messages on each address
		local want = {}
		for round = 1, 3 do
			for i, cl in ipairs(cls) do
				if round > 1 then assert(cl.c:rebind()) end
				for k = 1, 10 do
					local m = ("m%d.%d.%d"):format(i, round, k)
					assert(cl:send(m))
					want[cl] = (want[cl] or 0) + 1
				end
			end
			T.wait(function()
				for _, cl in ipairs(cls) do
					local got = 0
					for _, m in ipairs(cl.messages) do
						if m:match("^m") then got = got + 1 end
					end
					if got < want[cl] then return false end
				end
				return true
			end, 10000, unpack(cls))
		end
		for _, cl in ipairs(cls) do
			assert.is_nil(cl.closed)
		end
		-- no packet reached a worker that did not know its session
		for w = 0, 1 do
			assert.are.equal("0", ask(on[w][1], "unknown", cls))
		end
	end)

	it("200 clients through rebinding and UDP<->TCP switches: every packet to its owner, none lost", function()
		local netem = require "moongate.netem"
		local srv = start(2, 30000)
		local n = netem.start{ server = srv, seed = 17 }
		local url = ("udp://127.0.0.1:%d,tcp://127.0.0.1:%d"):format(n.udp_port, n.tcp_port)
		local cls = {}
		for i = 1, 200 do
			cls[i] = T.connect(url, nil, "c" .. i, { fallback_ms = 1000, path_timeout_ms = 1500,
				probe_ms = 500, reconnect_ms = 250, tcp_linger_ms = 1000, server_key = srv.key })
		end
		T.wait_open(cls, 20000)
		local on = { [0] = 0, [1] = 0 }
		for _, cl in ipairs(cls) do
			local w = worker_of(cl)
			on[w] = on[w] + 1
		end
		assert.is_true(on[0] > 0 and on[1] > 0, ("%d and %d"):format(on[0], on[1]))
		local want, seq = {}, 0
		-- every client echoes 3 messages per phase; a phase is done when
		-- every echo came back and every client is on `tr`
		local function phase(tr, what)
			seq = seq + 1
			for i, cl in ipairs(cls) do
				for k = 1, 3 do
					assert(cl:send(("m%d.%d.%d"):format(i, seq, k)))
					want[cl] = (want[cl] or 0) + 1
				end
			end
			T.wait(function()
				for _, cl in ipairs(cls) do
					if cl.c:transport() ~= tr then return false end
					local got = 0
					for _, m in ipairs(cl.messages) do
						if m:match("^m") then got = got + 1 end
					end
					if got < want[cl] then return false end
				end
				return true
			end, 30000, unpack(cls))
		end
		phase("udp", "start")
		n:rebind()                  -- every client's NAT mapping changes
		phase("udp", "rebound")
		n:blackhole(true, "udp")    -- UDP blocked: all over to TCP
		phase("tcp", "udp blocked")
		n:blackhole(false, "udp")   -- UDP back: all back to it
		phase("udp", "udp back")
		n:rebind()
		phase("udp", "rebound again")
		for _, cl in ipairs(cls) do
			assert.is_nil(cl.closed)
			-- every message exactly once, in order
			local last = {}
			for _, m in ipairs(cl.messages) do
				local s, k = m:match("^m%d+%.(%d+)%.(%d+)$")
				if s then
					local key = tonumber(s) * 10 + tonumber(k)
					assert.is_true(key > (last[1] or 0), "a message twice or out of order")
					last[1] = key
				end
			end
		end
		-- no packet reached a worker that did not know its session, and
		-- TCP connections were handed to their session's worker
		local handed = 0
		for _, cl in ipairs(cls) do
			if worker_of(cl) == 0 and not on.asked0 then
				on.asked0 = true
				assert.are.equal("0", ask(cl, "unknown", cls))
				handed = handed + tonumber(ask(cl, "handoffs", cls):match("^(%d+)"))
			elseif worker_of(cl) == 1 and not on.asked1 then
				on.asked1 = true
				assert.are.equal("0", ask(cl, "unknown", cls))
				handed = handed + tonumber(ask(cl, "handoffs", cls):match("^(%d+)"))
			end
		end
		assert.is_true(on.asked0 and on.asked1)
		assert.is_true(handed > 0)
	end)

	it("restart a killed worker; the other worker's players notice nothing", function()
		local srv = start(2)
		local cls = {}
		for i = 1, 32 do
			cls[i] = T.connect(srv, "udp", "c" .. i)
		end
		T.wait_open(cls, 10000)
		local on = { [0] = {}, [1] = {} }
		for _, cl in ipairs(cls) do
			table.insert(on[worker_of(cl)], cl)
		end
		assert.is_true(#on[0] > 0 and #on[1] > 0)
		local pid = tonumber(srv:log():match("workers: worker 1 started, pid (%d+)"))
		assert.is_number(pid)
		T.kill(pid, 9)
		srv:wait_log("workers: worker 1 %(pid " .. pid .. "%) killed by signal 9", 5000)
		srv:wait_log("workers: worker 1 started, pid %d+", 5000)
		-- the killed worker's players learn it (the stateless reset, code
		-- 10) at their next packet; the other worker's still echo
		for _, cl in ipairs(on[1]) do
			cl:send("after")
		end
		T.wait(function()
			for _, cl in ipairs(on[1]) do
				if not cl.closed then return false end
			end
			return true
		end, 10000, unpack(cls))
		for _, cl in ipairs(on[1]) do
			assert.are.equal(10, cl.closed.code)
		end
		for _, cl in ipairs(on[0]) do
			assert.are.equal("still here", ask(cl, "still here", cls))
			assert.is_nil(cl.closed)
		end
		-- new clients are served by both again
		local seen = {}
		local more = {}
		for i = 1, 32 do -- all 32 on one worker: 2^-31
			more[i] = T.connect(srv, "udp", "n" .. i)
		end
		T.wait_open(more, 10000)
		for _, cl in ipairs(more) do
			seen[worker_of(cl)] = true
		end
		assert.is_true(seen[0] and seen[1])
	end)

	it("pass a TCP connection to the worker of its session: resumes over TCP", function()
		local srv = start(2, 30000)
		local cls = {}
		for i = 1, 24 do
			cls[i] = T.connect(srv, "tcp", "t" .. i, { reconnect_ms = 100 })
		end
		T.wait_open(cls, 10000)
		local on = {}
		for _, cl in ipairs(cls) do
			on[cl] = worker_of(cl)
		end
		-- every client loses its connection: it reconnects (a new TCP
		-- connection, which the kernel gives to either worker) and resumes
		for round = 1, 2 do
			for _, cl in ipairs(cls) do
				assert.are.equal(0, ffi.C.shutdown(cl.c:fd(), 2))
			end
			T.wait(function()
				for _, cl in ipairs(cls) do
					local resumed = 0
					for _, ev in ipairs(cl.events) do
						if ev.type == "resume" then resumed = resumed + 1 end
					end
					if resumed < round then return false end
				end
				return true
			end, 10000, unpack(cls))
			for i, cl in ipairs(cls) do
				assert.are.equal("r" .. round .. "." .. i, ask(cl, "r" .. round .. "." .. i, cls))
				assert.are.equal(on[cl], worker_of(cl)) -- the same session, the same worker
				assert.is_nil(cl.closed)
			end
		end
		-- some of the new connections were passed between the workers
		local passed, adopted = 0, 0
		local seen = {}
		for _, cl in ipairs(cls) do
			if not seen[on[cl]] then
				seen[on[cl]] = true
				local h, a = ask(cl, "handoffs", cls):match("(%d+) (%d+)")
				passed, adopted = passed + tonumber(h), adopted + tonumber(a)
			end
		end
		assert.is_true(passed > 0, "no connection was passed")
		assert.are.equal(passed, adopted)
	end)

	it("bring a killed worker's players back with their cookie and their data (Redis)", function()
		local json = require "moongate.json"
		local rd = T.start_redis()
		local GAME = [[
local json = require "moongate.json"
local login = require "login"
local svc = {}
function svc.message(session, data, reliable)
	local p = login.player(session)
	if data == "id" then session:send(tostring(session:id())) return true end
	if data:match("^keep ") then
		p.data.v = data:sub(6)
		assert(login.save(p))
		session:send("kept")
		return true
	end
	if data == "get" then session:send("v=" .. tostring(p.data.v)) return true end
end
return svc
]]
		local srv = T.start_server{ services = { "login", "game" }, inline = { game = GAME },
			config = { workers = 2, redis = { url = rd.url } } }
		local cls, logins = {}, {}
		for i = 1, 24 do
			cls[i] = T.connect(srv, "udp", json.encode({ v = 1, name = "p" .. i }))
		end
		for i, cl in ipairs(cls) do
			logins[i] = cl:wait_login()
			assert.are.equal("kept", ask(cl, "keep " .. i, cls))
		end
		local victims = {}
		for i, cl in ipairs(cls) do
			if worker_of(cl) == 0 then victims[#victims + 1] = i end
		end
		assert.is_true(#victims > 0)
		local pid = tonumber(srv:log():match("workers: worker 0 started, pid (%d+)"))
		T.kill(pid, 9)
		srv:wait_log("workers: worker 0 started, pid %d+", 5000)
		for _, i in ipairs(victims) do
			cls[i]:send("get")
		end
		T.wait(function()
			for _, i in ipairs(victims) do
				if not cls[i].closed then return false end
			end
			return true
		end, 10000, unpack(cls))
		-- back with the cookie, on whichever worker: the same player, its data
		for _, i in ipairs(victims) do
			assert.are.equal(10, cls[i].closed.code)
			local cl = T.connect(srv, "udp", json.encode({ v = 1, cookie = logins[i].cookie }))
			local m = cl:wait_login()
			assert.is_true(m.restored)
			assert.are.equal(logins[i].id, m.id)
			assert.are.equal("v=" .. i, ask(cl, "get"))
		end
	end)

	it("upgrade under load: no session dropped, no message lost, new sessions on the new workers", function()
		-- the server runs a copy of the binary; the upgrade replaces the
		-- file (a new inode, as a package upgrade does) and the new workers
		-- must run the new file
		local dir = os.tmpname()
		os.remove(dir)
		assert(os.execute("mkdir -p " .. dir .. " && cp " .. (os.getenv("MOONGATE_BIN") or "build/moongate")
			.. " " .. dir .. "/moongate") == 0)
		local function exe_of(pid)
			local f = io.popen("readlink /proc/" .. pid .. "/exe")
			local s = f:read("*l")
			f:close()
			return s
		end
		local function inode(path)
			local f = io.popen("stat -c %i " .. path)
			local s = f:read("*l")
			f:close()
			return s
		end
		local cfg = { workers = 2, session = { resume_grace_ms = 30000 }, upgrade_drain_ms = 60000 }
		local srv = T.start_server{ services = { "who" }, inline = { who = WHO }, config = cfg,
			bin = dir .. "/moongate" }
		local old_inode = inode(dir .. "/moongate")
		local cls = {}
		for i = 1, 8 do
			cls[i] = T.connect(srv, i % 2 == 0 and "tcp" or "udp", "u" .. i)
		end
		T.wait_open(cls, 10000)
		for _, cl in ipairs(cls) do
			assert.is_true(worker_of(cl) < 2)
		end
		-- every client sends while the upgrade happens, and after
		local sent = {}
		local function send_round(tag)
			for i, cl in ipairs(cls) do
				local m = tag .. "." .. i
				assert(cl:send(m))
				sent[#sent + 1] = { cl, m }
			end
		end
		send_round("before")
		-- the new binary: another file at the same path
		assert(os.execute("cp " .. dir .. "/moongate " .. dir .. "/moongate.new && mv "
			.. dir .. "/moongate.new " .. dir .. "/moongate") == 0)
		assert.are_not.equal(old_inode, inode(dir .. "/moongate"))
		T.kill(srv.pid, 12) -- SIGUSR2: moongate upgrade
		-- sending all the while, until the new workers serve (a deadline,
		-- not a count of rounds: a loaded machine starts them slower)
		local serving = false
		local now = require("moongate.client").now
		local deadline = now() + 30e6
		local round = 0
		while now() < deadline do
			round = round + 1
			send_round("during" .. round)
			for _, cl in ipairs(cls) do cl:step(5) end
			if srv:log():find("workers: upgrade: 2 new workers serve", 1, true) then
				serving = true
				break
			end
		end
		assert.is_true(serving, "the new workers did not come up")
		send_round("after")
		T.wait(function()
			for _, e in ipairs(sent) do
				local found = false
				for _, m in ipairs(e[1].messages) do
					if m == e[2] then found = true break end
				end
				if not found then return false end
			end
			return true
		end, 10000, unpack(cls))
		for _, cl in ipairs(cls) do
			assert.is_nil(cl.closed)
			assert.is_true(worker_of(cl) < 2) -- still on its old worker
		end
		-- new sessions go to the new workers (slots 2 and 3), over both transports
		for i = 1, 8 do
			local cl = T.connect(srv, i % 2 == 0 and "tcp" or "udp", "new" .. i)
			cl:wait_open()
			assert.is_true(worker_of(cl) >= 2)
		end
		-- the new workers run the new file; the old ones the replaced one
		for k = 2, 3 do
			local pid = tonumber(srv:log():match("workers: worker " .. k .. " started, pid (%d+)"))
			assert.is_number(pid)
			assert.are.equal(dir .. "/moongate", exe_of(pid))
		end
		local old = tonumber(srv:log():match("workers: worker 0 started, pid (%d+)"))
		assert.truthy(exe_of(old):find("(deleted)", 1, true))
		-- the old workers leave when their last session ends
		for _, cl in ipairs(cls) do cl:close() end
		srv:wait_log("workers: worker 0 %(pid %d+%) exited with status 0", 10000)
		srv:wait_log("workers: worker 1 %(pid %d+%) exited with status 0", 10000)
	end)

	it("refuse to start a lone server on a port another one holds", function()
		local srv = start(1)
		local ok, err = pcall(T.start_server, { services = { "echo" }, transports = {},
			args = { "--listen", "udp://127.0.0.1:" .. srv.udp } })
		assert.is_false(ok)
		assert.truthy(tostring(err):find("another server on this port", 1, true), tostring(err))
		-- nor workers: their group would mix with the other's sockets
		ok, err = pcall(T.start_server, { services = { "echo" }, transports = {},
			args = { "--listen", "udp://127.0.0.1:" .. srv.udp, "--set", "workers=2" },
			ready_ms = 15000 })
		assert.is_false(ok)
		assert.truthy(tostring(err):find("is taken by another process", 1, true), tostring(err))
	end)
end)
