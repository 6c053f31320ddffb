-- The live status page (issue 18) in a real browser: Debian's Chromium,
-- headless, loads http://HOST:PORT/ of a server with clients and a room,
-- runs the page's script (which reads /status.json every second) and
-- prints the DOM it built; the spec asserts what the page shows. Pending
-- with the reason where Chromium is not installed (scripts/deps.sh page).
local T = require "moongate.test"
local json = require "moongate.json"

local function chromium()
	for _, p in ipairs({ os.getenv("CHROMIUM") or "", "/usr/bin/chromium",
		"/usr/bin/chromium-browser", "/usr/bin/google-chrome" }) do
		local f = p ~= "" and io.open(p, "rb")
		if f then
			f:close()
			return p
		end
	end
end

-- Chromium's DOM of url after the page's script ran for budget_ms of
-- virtual time (its own profile in dir; no sandbox: root in CI). The test
-- clients are stepped while it runs (T.reap), so they stay live.
local function dom(bin, dir, url, budget_ms, extra)
	local argv = { bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" .. dir .. "/chromium",
		"--virtual-time-budget=" .. budget_ms }
	for _, a in ipairs(extra or { "--dump-dom" }) do argv[#argv + 1] = a end
	argv[#argv + 1] = url
	local pid, fd = T.spawn(argv, dir .. "/chromium.err")
	local lines = {}
	local st = T.reap(pid, 60000)
	if not st then
		T.kill(pid, 9)
		T.reap(pid, 5000)
		error("chromium did not finish in 60 s")
	end
	T.read_lines(fd, 5000, function(line)
		lines[#lines + 1] = line
		return false
	end)
	return table.concat(lines, "\n")
end

describe("status page", function()
	after_each(function() T.stop_all() end)

	it("shows the live figures in a real browser", function()
		local bin = chromium()
		if not bin then
			pending("Chromium is not installed (scripts/deps.sh page installs Debian's chromium)")
			return
		end
		local srv = T.start_server{ services = { "login", "room" },
			config = { metrics = "127.0.0.1:0" } }
		local cls = {}
		for i = 1, 3 do
			cls[i] = T.connect(srv, "udp", json.encode({ v = 1, name = "p" .. i }))
			cls[i]:wait_login()
		end
		assert(cls[1]:send(json.encode({ op = "create", mode = "lockstep", capacity = 4 })))
		local room = cls[1]:wait_op("joined").room
		assert(cls[2]:send(json.encode({ op = "join", room = room })))
		cls[2]:wait_op("joined")
		-- a refused login: a close code to show
		local bad = T.connect(srv, "udp", json.encode({ v = 1, cookie = "2.00..1.1.00" }))
		bad:wait_close()
		-- the room ticks a while: its tick time is measured
		T.wait(function()
			return (srv:metric("moongate_room_tick_seconds_count", 'mode="lockstep"') or 0) > 10
		end, 5000, unpack(cls))
		local url = ("http://127.0.0.1:%d/"):format(srv.metrics_port)
		local html = dom(bin, srv.dir, url, 3000)
		assert.truthy(html:find('data-ready="1"', 1, true),
			"the page did not render its figures:\n" .. html:sub(1, 2000))
		assert.truthy(html:find('id="s-open">3<', 1, true), html)
		assert.truthy(html:find('id="rooms">1<', 1, true), html)
		assert.truthy(html:find('class="state live"', 1, true), html)
		-- the top rooms table names the room, its mode and members
		assert.truthy(html:find("<td>" .. room .. "</td><td>lockstep</td><td>2</td>", 1, true), html)
		assert.truthy(html:find("<td>code 4112</td><td>1</td>", 1, true), html)
		assert.truthy(html:find("<td>login</td><td>connect</td>", 1, true), html)
		assert.truthy(html:find("<td>sessions opened</td>", 1, true), html)
		-- a screenshot beside the build (docs/status_page.png is one)
		local shot = os.getenv("MOONGATE_SCREENSHOT")
		if shot then
			dom(bin, srv.dir, url, 3000, { "--window-size=1100,900", "--screenshot=" .. shot })
		end
	end)
end)
