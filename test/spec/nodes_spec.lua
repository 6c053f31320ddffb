-- Many machines on one box (issue 17): two nodes, each in a network
-- namespace of its own with its own address, one redis-server between
-- them (on a Unix socket: namespaces do not separate paths), the test's
-- clients in a third namespace wired to both by veth pairs. The nodes know
-- each other only through Redis. A player logs in on node A and
-- quick-matches into a room on node B (a move across nodes, followed by
-- the client library); node B is killed and started again; presence and
-- cookies stay right.
--
-- Needs root and iproute2 (`ip netns`); pending otherwise. The namespaces
-- are created and removed here; no packet leaves them.
local T = require "moongate.test"
local json = require "moongate.json"
local sync = require "moongate.sync"
local ffi = require "ffi"

ffi.cdef [[
int setns(int fd, int nstype);
int open(const char *path, int flags, ...);
int close(int fd);
unsigned int getuid(void);
int getpid(void);
]]
local CLONE_NEWNET = 0x40000000

local function sh(cmd)
	local f = io.popen(cmd .. " 2>&1; echo \"rc:$?\"")
	local out = f:read("*a")
	f:close()
	local text, rc = out:match("^(.-)rc:(%d+)\n$")
	return tonumber(rc) == 0, text
end

local IP = "/usr/sbin/ip"
local tag = tostring(ffi.C.getpid())
local NS = { hub = "mgH" .. tag, a = "mgA" .. tag, b = "mgB" .. tag }

-- hub: vA 10.77.1.1 <-> eA 10.77.1.2 (node A), vB 10.77.2.1 <-> eB 10.77.2.2 (node B)
local function make_net()
	local cmds = {}
	for _, n in pairs(NS) do
		cmds[#cmds + 1] = IP .. " netns add " .. n
		cmds[#cmds + 1] = IP .. " -n " .. n .. " link set lo up"
	end
	for i, side in ipairs({ "a", "b" }) do
		local v, e = "v" .. side:upper(), "e" .. side:upper()
		cmds[#cmds + 1] = ("%s -n %s link add %s type veth peer name %s netns %s"):format(IP, NS.hub, v, e, NS[side])
		cmds[#cmds + 1] = ("%s -n %s addr add 10.77.%d.1/24 dev %s"):format(IP, NS.hub, i, v)
		cmds[#cmds + 1] = ("%s -n %s link set %s up"):format(IP, NS.hub, v)
		cmds[#cmds + 1] = ("%s -n %s addr add 10.77.%d.2/24 dev %s"):format(IP, NS[side], i, e)
		cmds[#cmds + 1] = ("%s -n %s link set %s up"):format(IP, NS[side], e)
	end
	for _, c in ipairs(cmds) do
		local ok, out = sh(c)
		if not ok then
			return nil, c .. ": " .. out
		end
	end
	return true
end

local function drop_net()
	for _, n in pairs(NS) do
		sh(IP .. " netns del " .. n)
	end
end

-- This process into the hub namespace (its clients and children with
-- it); back where it was with leave().
local home
local function enter(ns)
	home = home or ffi.C.open("/proc/self/ns/net", 0)
	local fd = ffi.C.open("/var/run/netns/" .. ns, 0)
	assert(fd >= 0, "no /var/run/netns/" .. ns)
	local r = ffi.C.setns(fd, CLONE_NEWNET)
	ffi.C.close(fd)
	assert(r == 0, "setns failed")
end
local function leave()
	if home then
		ffi.C.setns(home, CLONE_NEWNET)
	end
end

local function node(name, side, rd, extra)
	local i = side == "a" and 1 or 2
	local addr = ("10.77.%d.2"):format(i)
	local cfg = { node_id = name, node_url = ("udp://%s:7000"):format(addr),
		redis = { url = rd.url } }
	for k, v in pairs(extra or {}) do cfg[k] = v end
	return T.start_server{ services = { "login", "room" }, config = cfg,
		wrap = { IP, "netns", "exec", NS[side] },
		listen = { ("udp://%s:7000"):format(addr), ("tcp://%s:7000"):format(addr) } }
end

local function presence(rd, uid)
	return rd:cli("HGET", "moongate:presence:" .. uid, "node")
end

-- frames seen by cl from now until it has n more, no gap
local function frames(cl, n, what)
	local got, last = 0, nil
	cl:wait(function()
		for k = cl.read + 1, #cl.messages do
			local f = cl.messages[k]
			if sync.is_frame(f) then
				local fr = sync.decode_frame(f)
				assert(not last or fr == last + 1, what .. ": a gap in the frames")
				last, got = fr, got + 1
			end
		end
		cl.read = #cl.messages
		return got >= n
	end, 10000, what .. ": " .. n .. " frames")
	return last
end

describe("nodes", function()
	local ready, why
	setup(function()
		if ffi.C.getuid() ~= 0 then
			ready, why = false, "needs root (ip netns)"
			return
		end
		if not io.open(IP, "rb") then
			ready, why = false, "needs iproute2 (" .. IP .. ")"
			return
		end
		local ok, err = make_net()
		if not ok then
			drop_net()
			ready, why = false, "network namespaces unavailable: " .. tostring(err)
			return
		end
		enter(NS.hub)
		ready = true
	end)
	teardown(function()
		T.stop_all()
		leave()
		drop_net()
	end)

	it("log in on node A, quick-match into a room on node B, survive B's crash", function()
		if not ready then
			pending(why)
			return
		end
		local rd = T.start_redis()
		local A = node("A", "a", rd)
		local B = node("B", "b", rd, { workers = 2, secrets = A.dir .. "/secret" })
		assert.are.equal(A.key, B.key) -- one deployment: one secrets file
		-- bea logs in on B and opens a lockstep room there
		local bea = T.connect(B, "udp", json.encode({ v = 1, name = "bea" }))
		local bl = bea:wait_login()
		assert(bea:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local room = bea:wait_op("joined").room
		assert.are.equal("B", presence(rd, bl.uid))
		-- al logs in on A and quick-matches: A has no lockstep room, B's has
		-- a free seat: al is moved to B (the library follows) and seated
		local al = T.connect(A, "udp", json.encode({ v = 1, name = "al" }))
		local ll = al:wait_login()
		assert.are.equal("A", presence(rd, ll.uid))
		assert(al:send(json.encode({ op = "join", mode = "lockstep" })))
		local j = al:wait_op("joined", 10000)
		assert.are.equal(room, j.room)
		assert.are.equal(1, al.moves)
		assert.is_nil(al.closed)
		assert.are.equal("B", presence(rd, ll.uid))
		local relog = al:wait_op("login") -- the login on B, after the move
		assert.are.equal(ll.id, relog.id)
		assert.is_true(relog.restored)
		-- both play: frames with each other's inputs
		frames(al, 10, "al")
		frames(bea, 10, "bea")
		assert(al:send("Ihi from al"))
		bea:wait(function()
			for k = 1, #bea.messages do
				local f = bea.messages[k]
				if sync.is_frame(f) then
					local _, ins = sync.decode_frame(f)
					for _, e in ipairs(ins) do
						if e.data == "hi from al" then return true end
					end
				end
			end
		end, 5000, "al's input in bea's frames")

		-- node B crashes (kill -9 of the supervisor's workers and itself) and
		-- comes back on the same address: both are told at once (a RESET)
		-- and come back with their cookies, to their seats
		B:restart()
		for _, cl in ipairs({ al, bea }) do
			cl:send("Iping")
		end
		T.wait(function() return al.closed and bea.closed end, 10000, al, bea)
		assert.are.equal(10, al.closed.code)
		assert.are.equal(10, bea.closed.code)
		local back = {}
		for who, l in pairs({ al = relog, bea = bl }) do
			local cl = T.connect(B, "udp", json.encode({ v = 1, cookie = l.cookie }))
			local m = cl:wait_login()
			assert.are.equal(l.id, m.id)
			assert.is_true(m.restored)
			local jj = cl:wait_op("joined", 10000)
			assert.are.equal(room, jj.room)
			assert.is_true(jj.rejoined)
			assert.are.equal("B", presence(rd, l.uid))
			back[who] = cl
		end
		frames(back.al, 5, "al after the crash")
		-- al's cookie works on A too (one deployment): the login there
		-- closes its session on B through Redis (4113); al holds a seat in
		-- the room on B, so A sends it back there, to its seat
		local al2 = T.connect(A, "udp", json.encode({ v = 1, cookie = relog.cookie }))
		local m2 = al2:wait_login()
		assert.are.equal(ll.id, m2.id)
		back.al:wait_close(5000)
		assert.are.equal(4113, back.al.closed.code)
		local j2 = al2:wait_op("joined", 10000)
		assert.are.equal(room, j2.room)
		assert.is_true(j2.rejoined)
		assert.are.equal(1, al2.moves)
		assert.are.equal("B", presence(rd, ll.uid))
		-- a player logged out anywhere is refused everywhere
		assert(al2:send(json.encode({ op = "logout" })))
		al2:wait_close(5000)
		for _, srv in ipairs({ A, B }) do
			local again = T.connect(srv, "udp", json.encode({ v = 1, cookie = relog.cookie }))
			again:wait_close(5000)
			assert.are.equal(4112, again.closed.code)
		end
	end)
end)
