-- moongate.loader: how the server loads service code and reloads it live
-- (docs/LUA_API.md, "Hot reload"). The runtime (core/lua/script.c) calls
-- setup() once with the service directories, then require()s the services
-- through it; every module found in those directories is tracked.
--
-- reload() looks at every tracked file, and for each one whose content
-- changed, in the order they were first loaded:
--   1. compiles it (a syntax error: refused, "file:line: message");
--   2. runs it (an error: refused, with the traceback);
--   3. calls the new module's reload(old) hook, if it has one (an error:
--      refused);
--   4. only then patches the old module table in place: every key of the
--      new table is copied in, and functions of this file that the new
--      code no longer defines are removed; the new functions' references
--      to their own module table are pointed at the table in use.
-- Console commands registered while the new code runs take effect only
-- when it is accepted.
-- Because the table keeps its identity, everything that holds it (the
-- runtime's list of services, a room holding its game module) calls the
-- new functions from then on. A refused module keeps its old code whole.
-- State that must survive a reload lives in moongate.state(name), never in
-- a module's local variables (they belong to the code that made them).
local M = {}

local rebind
local dirs = {}         -- "dir/?.lua;dir/?/init.lua" patterns
local tracked = {}      -- name -> { path =, source = }
local order = {}        -- names, in first-load order
M.reloads = 0           -- modules replaced since the start
M.refusals = 0          -- reloads refused

local function read(path)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local s = f:read("*a")
	f:close()
	return s
end

local function search(name)
	local rel = name:gsub("%.", "/")
	for _, d in ipairs(dirs) do
		for _, pat in ipairs({ "/?.lua", "/?/init.lua" }) do
			local path = d .. pat:gsub("%?", rel)
			local f = io.open(path, "rb")
			if f then
				f:close()
				return path
			end
		end
	end
end

-- package.loaders[2]: modules of the service directories, tracked.
local function searcher(name)
	local path = search(name)
	if not path then
		return "\n\tno file for '" .. name .. "' in the service directories"
	end
	local source = read(path)
	local fn, err = loadstring(source or "", "@" .. path)
	if not fn then
		error(err, 0)
	end
	if not tracked[name] then
		order[#order + 1] = name
	end
	tracked[name] = { path = path, source = source }
	return fn
end

function M.setup(service_dirs)
	dirs = {}
	for i, d in ipairs(service_dirs) do
		dirs[i] = d
	end
	table.insert(package.loaders, 2, searcher)
end

-- The tracked modules: { {name=, path=}, ... } in load order.
function M.modules()
	local out = {}
	for i, name in ipairs(order) do
		out[i] = { name = name, path = tracked[name].path }
	end
	return out
end

-- Copy new into old. A key the new code no longer defines is removed only
-- if its value is a function from this same file: what other modules put
-- in the table (login.authenticate set by the game) stays.
local function patch(old, new, path)
	for k, v in pairs(old) do
		if new[k] == nil and type(v) == "function" then
			local info = debug.getinfo(v, "S")
			if info.source == "@" .. path then
				old[k] = nil
			end
		end
	end
	for k, v in pairs(new) do
		old[k] = v
	end
end

-- The new code's functions refer to the new table (its `local M = {}`),
-- which is thrown away: point that upvalue at the table in use, so that
-- M.x inside them reads what the game set on the module, and closures they
-- make later (timers) call through the patched table. The functions of
-- one chunk share the upvalue, so this covers the local helpers too.
rebind = function(new, old)
	for _, f in pairs(old) do
		if type(f) == "function" then
			for i = 1, 255 do
				local n, v = debug.getupvalue(f, i)
				if not n then
					break
				end
				if v == new then
					debug.setupvalue(f, i, old)
				end
			end
		end
	end
end

-- Reload one module from source; true, or nil and the reason.
local function reload_one(name, t, source)
	local old = package.loaded[name]
	if type(old) ~= "table" then
		return nil, "the module did not return a table; it cannot be patched"
	end
	local fn, err = loadstring(source, "@" .. t.path)
	if not fn then
		return nil, err
	end
	-- console commands the new code registers take effect only if it is
	-- accepted (moongate.admin stages them)
	local admin = package.loaded["moongate.admin"]
	if admin then
		admin.stage()
	end
	local ok, new = xpcall(function() return fn(name) end, debug.traceback)
	local why
	if not ok then
		why = new
	elseif type(new) ~= "table" then
		why = "the new code returned a " .. type(new) .. ", not a table"
	elseif type(new.reload) == "function" then
		local ok2, e = xpcall(function() return new.reload(old) end, debug.traceback)
		if not ok2 then
			why = "reload hook: " .. tostring(e)
		end
	end
	if admin then
		admin.unstage(why == nil)
	end
	if why then
		return nil, why
	end
	patch(old, new, t.path)
	rebind(new, old)
	return true
end

-- Reload every tracked module whose file changed. Returns a report:
-- { reloaded = {names}, refused = { {name=, err=} }, unchanged = n }.
-- log(level, msg) is called for each reloaded or refused module.
function M.reload(log)
	local rep = { reloaded = {}, refused = {}, unchanged = 0 }
	for _, name in ipairs(order) do
		local t = tracked[name]
		local source = read(t.path)
		if not source then
			rep.refused[#rep.refused + 1] = { name = name, err = t.path .. ": cannot read the file" }
		elseif source == t.source or source == t.refused then
			-- a refused version is not tried again until the file changes
			rep.unchanged = rep.unchanged + 1
		else
			local ok, err = reload_one(name, t, source)
			if ok then
				t.source = source
				t.refused = nil
				M.reloads = M.reloads + 1
				rep.reloaded[#rep.reloaded + 1] = name
				if log then
					log("info", string.format("reload: %s reloaded from %s", name, t.path))
				end
			else
				t.refused = source
				M.refusals = M.refusals + 1
				rep.refused[#rep.refused + 1] = { name = name, err = err }
				if log then
					log("error", string.format("reload: %s refused, the old code keeps running: %s",
						name, tostring(err)))
				end
			end
		end
	end
	return rep
end

-- The report as one line: "reloaded room, arena; refused x (...); 3 unchanged"
function M.summary(rep)
	local parts = {}
	if #rep.reloaded > 0 then
		parts[#parts + 1] = "reloaded " .. table.concat(rep.reloaded, ", ")
	end
	for _, r in ipairs(rep.refused) do
		parts[#parts + 1] = "refused " .. r.name .. ": " .. (tostring(r.err):match("^[^\n]*"))
	end
	parts[#parts + 1] = rep.unchanged .. " unchanged"
	return table.concat(parts, "; ")
end

return M
