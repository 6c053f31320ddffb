-- echo: the smallest service. Every message goes back to its sender the
-- way it came: reliable ones reliably, unreliable ones unreliably.
local echo = {}

function echo.message(session, data, reliable)
	if reliable then
		session:send(data)
	else
		session:send_unreliable(data)
	end
end

return echo
