-- moongate.test_backends: the services a spec starts beside the server
-- (part of require "moongate.test"; docs/LUA_API.md): T.start_redis, a
-- real redis-server, and T.start_http_backend, test/lib/http_backend.py.
-- Loaded by moongate.test with its process helpers.
return function(T, h)
local P, mkdtemp, spawn, reap, read_lines, read_file = h.P, h.mkdtemp, h.spawn,
	h.reap, h.read_lines, h.read_file
local shell_quote, poll_fds, now_ms, repo_dir = h.shell_quote, h.poll_fds,
	h.now_ms, h.repo_dir
local SIGTERM, SIGKILL = h.SIGTERM, h.SIGKILL

-- ---- Redis -------------------------------------------------------------------

-- A real redis-server (Debian's; scripts/deps.sh installs it) on a Unix
-- socket in a fresh directory: no port to choose, nothing on the network.
-- rd.url is what config.lua's redis.url takes; rd:cli(...) runs redis-cli
-- against it and returns its output; rd:stop() / rd:start() stop it and
-- start it again on the same socket (its data is kept only with
-- opts.persist: an append-only file, synced on every write);
-- T.stop_all stops it with the rest.
local Redis = {}
Redis.__index = Redis

function T.start_redis(opts)
	opts = opts or {}
	local bin = opts.bin or os.getenv("REDIS_SERVER") or "/usr/bin/redis-server"
	if not io.open(bin, "rb") then
		error("start_redis: no redis-server at " .. bin ..
			" (scripts/deps.sh installs it; REDIS_SERVER names another)", 2)
	end
	local dir = mkdtemp()
	local rd = setmetatable({ dir = dir, bin = bin, sock = dir .. "/redis.sock",
		persist = opts.persist }, Redis)
	rd.url = "unix:" .. rd.sock
	local ok, err = pcall(rd.start, rd, opts.ready_ms)
	if not ok then
		rd:stop()
		error(err, 2)
	end
	T.track(rd)
	return rd
end

function Redis:cli(...)
	local args = { "redis-cli", "-s", self.sock }
	for _, a in ipairs({ ... }) do
		args[#args + 1] = shell_quote(tostring(a))
	end
	local f = io.popen(table.concat(args, " ") .. " 2>&1")
	local out = f:read("*a")
	f:close()
	return (out:gsub("\n$", ""))
end

function Redis:start(ready_ms)
	if self.pid then
		return
	end
	local argv = { self.bin, "--port", "0", "--unixsocket", self.sock,
		"--unixsocketperm", "700", "--save", "",
		"--appendonly", self.persist and "yes" or "no", "--appendfsync", "always",
		"--dir", self.dir, "--logfile", self.dir .. "/redis.log",
		"--daemonize", "no" }
	self.pid, self.out = spawn(argv, self.dir .. "/redis.err")
	local deadline = now_ms() + (ready_ms or 10000)
	while self:cli("PING") ~= "PONG" do
		if now_ms() > deadline then
			error("start_redis: no PONG from " .. self.sock .. " within " ..
				(ready_ms or 10000) .. " ms\n" .. (read_file(self.dir .. "/redis.log") or ""), 2)
		end
		poll_fds({}, 10)
	end
end

-- Stop it (sig: SIGTERM by default; 9 for a crash).
function Redis:stop(sig)
	if self.pid then
		P.kill(self.pid, sig or SIGTERM)
		if not reap(self.pid, 5000) then
			P.kill(self.pid, SIGKILL)
			reap(self.pid, 5000)
		end
		P.close(self.out)
		self.pid = nil
	end
end

-- T.stop_all's: stopped, its directory removed, forgotten.
function Redis:teardown()
	self:stop()
	os.execute("rm -rf " .. shell_quote(self.dir))
	T.untrack(self)
end

-- ---- an HTTP backend ----------------------------------------------------------

-- test/lib/http_backend.py (python3): a game's web backend on 127.0.0.1
-- at a port the kernel chose; opts.delay_ms delays each /login answer.
-- hb.url is its base ("http://127.0.0.1:PORT"); T.stop_all stops it.
local Backend = {}
Backend.__index = Backend

function T.start_http_backend(opts)
	opts = opts or {}
	local dir = mkdtemp()
	local argv = { "/usr/bin/python3", repo_dir() .. "/test/lib/http_backend.py",
		"--delay-ms", tostring(opts.delay_ms or 0) }
	local hb = setmetatable({ dir = dir }, Backend)
	hb.pid, hb.out = spawn(argv, dir .. "/backend.err")
	local ok, why = read_lines(hb.out, opts.ready_ms or 10000, function(line)
		local port = line:match("^http_backend: port (%d+)$")
		if port then
			hb.port = tonumber(port)
			return true
		end
	end)
	if not ok then
		hb:teardown()
		error("start_http_backend: " .. tostring(why) .. "\n" ..
			(read_file(dir .. "/backend.err") or ""), 2)
	end
	hb.url = "http://127.0.0.1:" .. hb.port
	T.track(hb)
	return hb
end

function Backend:stop()
	if self.pid then
		P.kill(self.pid, SIGTERM)
		if not reap(self.pid, 5000) then
			P.kill(self.pid, SIGKILL)
			reap(self.pid, 5000)
		end
		P.close(self.out)
		self.pid = nil
	end
end

-- GET path from the backend (python3's urllib; nothing else needed): the body.
function Backend:get(path)
	local f = io.popen("/usr/bin/python3 -c " .. shell_quote(
		"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
		.. " " .. shell_quote(self.url .. path) .. " 2>&1")
	local out = f:read("*a")
	f:close()
	return out
end

function Backend:teardown()
	self:stop()
	os.execute("rm -rf " .. shell_quote(self.dir))
	T.untrack(self)
end

end
