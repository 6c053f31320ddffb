-- greeter: the example service of README.md and docs/LUA_API.md. The
-- client's hello is its name; an empty name is refused.
local greeter = {}

function greeter.handshake(hello)
	if hello == "" then
		return false, "a name is required"
	end
end

function greeter.connect(session, hello)
	session.name = hello
	session:send("hello, " .. hello)
end

function greeter.message(session, data)
	session:send(session.name .. " said: " .. data)
end

return greeter
