-- The example of README.md ("Test your service"): a game developer's spec
-- for their own service, test/spec/example/greeter.lua.
local T = require "moongate.test"

describe("greeter", function()
	local srv
	lazy_setup(function()
		srv = T.start_server{ services = { "greeter" }, service_path = { "test/spec/example" } }
	end)
	lazy_teardown(T.stop_all)

	it("greets by name", function()
		local cl = T.connect(srv, "udp", "ann")
		cl:wait_open()
		assert.are.equal("hello, ann", cl:wait_message())
		cl:send("hi")
		assert.are.equal("ann said: hi", cl:wait_message())
	end)

	it("refuses an empty name with a reason", function()
		local cl = T.connect(srv, "tcp", "")
		assert.are.equal("a name is required", cl:wait_close().reason)
	end)
end)
