-- FEC and path validation (issue 14, section 2; docs/PROTOCOL.md, "FEC and
-- paths"): on a `?fec=8,2` listener, someone who sees the client's datagrams
-- and races a copy of each from its own address must move nothing and get
-- back no more bytes than it sent.
--
-- The client talks to a relay (three UDP sockets on loopback): every
-- datagram from the client goes to the server first as a copy from the
-- attacker's socket, then from the relay's own socket (the client's path as
-- the server sees it); what the server sends the relay goes back to the
-- client, what it sends the attacker is counted and kept.

local T = require "moongate.test"
local netem = require "moongate.netem"

local Relay = {}
Relay.__index = Relay

local function relay(server_port)
	return setmetatable({ server = server_port, front = netem.udp_socket(),
		genuine = netem.udp_socket(), evil = netem.udp_socket(),
		racing = true, evil_sent = 0, evil_got = 0, evil_pkts = 0 }, Relay)
end

function Relay:url()
	return "udp://127.0.0.1:" .. self.front.port
end

-- Move whatever is waiting; never blocks.
function Relay:pump()
	while true do
		local d, port = self.front:recv(0)
		if not d then break end
		self.client = port
		if self.racing then
			self.evil:send(self.server, d)
			self.evil_sent = self.evil_sent + #d
		end
		self.genuine:send(self.server, d)
	end
	while true do
		local d = self.genuine:recv(0)
		if not d then break end
		if self.client then
			self.front:send(self.client, d)
		end
	end
	while true do
		local d = self.evil:recv(0)
		if not d then break end
		self.evil_got = self.evil_got + #d
		self.evil_pkts = self.evil_pkts + 1
	end
end

function Relay:close()
	self.front:close()
	self.genuine:close()
	self.evil:close()
end

-- Step the client and the relay in 1 ms slices until cond() or ms.
local function run(r, cl, cond, ms, what)
	local deadline = T.now_ms() + ms
	while not cond() do
		if T.now_ms() > deadline then
			error(("timeout (%d ms) waiting for %s: %s; the attacker sent %d "
				.. "bytes, got %d"):format(ms, what, cl:describe(), r.evil_sent,
				r.evil_got), 2)
		end
		r:pump()
		cl:step(1)
	end
end

describe("FEC and path validation", function()
	lazy_teardown(T.stop_all)

	it("a race of copies from a third address moves nothing, reflects at most 1x", function()
		local srv = T.start_server{ services = { "echo" }, transports = {},
			args = { "--listen", "udp://127.0.0.1:0?fec=8,2" } }
		assert.equal(1, #srv.listening)
		local r = relay(srv.listening[1][3])
		local cl = assert(T.connect(r:url()))
		run(r, cl, function() return cl.opened end, 5000, "open")
		-- 40 small messages raced one by one, then 200 more in bursts
		local n = 0
		local function echoed() return #cl.messages >= n end
		for i = 1, 40 do
			n = n + 1
			assert(cl:send(("m%04d"):format(n)))
			run(r, cl, echoed, 5000, "echo " .. n)
		end
		for _ = 1, 20 do
			for _ = 1, 10 do
				n = n + 1
				assert(cl:send(("m%04d"):format(n)))
			end
			run(r, cl, echoed, 5000, "echo " .. n)
		end
		-- a while of heartbeats and retries with the attacker still there
		local t0 = T.now_ms()
		run(r, cl, function() return T.now_ms() - t0 > 1500 end, 3000, "1.5 s")
		-- the client got every echo, once, in order, and is still open
		assert.equal(n, #cl.messages)
		for i = 1, n do
			assert.equal(("m%04d"):format(i), cl.messages[i])
		end
		assert.is_nil(cl.closed)
		assert.equal("open", cl:state())
		-- the session stayed on the client's path
		assert.is_nil(srv:log():match("moved to"))
		-- one more echo after the race: it still comes back to the client
		r.racing = false
		n = n + 1
		assert(cl:send(("m%04d"):format(n)))
		run(r, cl, echoed, 5000, "the last echo")
		print(("\nfec race: attacker sent %d bytes, got %d in %d datagrams"):format(
			r.evil_sent, r.evil_got, r.evil_pkts))
		assert.is_true(r.evil_sent > 0)
		assert.is_true(r.evil_got <= r.evil_sent,
			("the attacker got %d bytes for %d"):format(r.evil_got, r.evil_sent))
		cl:release()
		r:close()
	end)
end)
