-- moongate.test_metrics: the metrics endpoint of a test server (part of
-- require "moongate.test"; docs/LUA_API.md): T.http_get, srv:scrape and
-- srv:metric. Loaded by moongate.test with its Server methods table.
return function(T, Server, h)
local bit = require "bit"
local ffi = require "ffi"
local P, now_ms, DEFAULT_WAIT = h.P, h.now_ms, h.DEFAULT_WAIT

-- An HTTP GET on 127.0.0.1:port (the metrics endpoint): status, body, or
-- nil and why; a deadline of ms (5000) on every step.
function T.http_get(port, path, ms)
	ms = ms or DEFAULT_WAIT
	local deadline = now_ms() + ms
	local fd = P.socket(P.AF_INET, P.SOCK_STREAM + P.SOCK_NONBLOCK + P.SOCK_CLOEXEC, 0)
	if fd < 0 then
		return nil, "socket: " .. P.errstr()
	end
	local sa = P.sockaddr_in(port)
	P.connect(fd, sa, P.SOCKADDR_IN_LEN) -- EINPROGRESS: poll for it below
	local req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"):format(path)
	local pfd = P.pollfd(1)
	local sent, out = 0, {}
	while true do
		local left = deadline - now_ms()
		if left <= 0 then
			P.close(fd)
			return nil, "timeout"
		end
		pfd[0].fd, pfd[0].events, pfd[0].revents = fd, sent < #req and 4 or P.POLLIN, 0
		P.poll(pfd, 1, math.min(50, math.ceil(left)))
		if sent < #req then
			if bit.band(pfd[0].revents, 4) ~= 0 then
				local n = tonumber(P.send(fd, req:sub(sent + 1), #req - sent, P.MSG_NOSIGNAL))
				if n < 0 then
					P.close(fd)
					return nil, "send: " .. P.errstr()
				end
				sent = sent + n
			end
		elseif pfd[0].revents ~= 0 then
			local buf = ffi.new("char[65536]")
			local n = tonumber(P.recv(fd, buf, 65536, 0))
			if n == 0 then
				break
			elseif n > 0 then
				out[#out + 1] = ffi.string(buf, n)
			elseif ffi.errno() ~= P.EAGAIN then
				P.close(fd)
				return nil, "recv: " .. P.errstr()
			end
		end
	end
	P.close(fd)
	local all = table.concat(out)
	local status = tonumber(all:match("^HTTP/1%.%d (%d+)"))
	local head, body = all:match("^(.-)\r\n\r\n(.*)$")
	if not status or not body then
		return nil, "not HTTP: " .. all:sub(1, 80)
	end
	if head:lower():find("transfer%-encoding: chunked") then
		local parts, pos = {}, 1
		while true do
			local size, at = body:match("^(%x+)\r\n()", pos)
			size = size and tonumber(size, 16)
			if not size or size == 0 then break end
			parts[#parts + 1] = body:sub(at, at + size - 1)
			pos = at + size + 2
		end
		body = table.concat(parts)
	end
	return status, body, head
end

-- srv:scrape([path]) -> the body of GET path (/metrics) on its metrics
-- endpoint (config metrics = "127.0.0.1:0"); raises on an error.
function Server:scrape(path)
	if not self.metrics_port then
		error("srv:scrape: this server has no metrics endpoint (config metrics)", 2)
	end
	local status, body = T.http_get(self.metrics_port, path or "/metrics")
	if status ~= 200 then
		error(("srv:scrape %s: %s %s"):format(path or "/metrics", tostring(status), tostring(body)), 2)
	end
	return body
end

-- srv:metric(name [, labels]) -> the value of the sample of /metrics whose
-- name is name and whose labels contain the text labels (e.g.
-- 'code="4112"'), or nil.
function Server:metric(name, labels)
	for line in self:scrape():gmatch("[^\n]+") do
		local n, l, v = line:match("^([%w_:]+){(.-)} (%S+)$")
		if not n then
			n, v = line:match("^([%w_:]+) (%S+)$")
			l = ""
		end
		if n == name and (not labels or l:find(labels, 1, true)) then
			return tonumber(v)
		end
	end
	return nil
end

end
