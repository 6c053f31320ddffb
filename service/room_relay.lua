-- room_relay: the "relay" room mode: state sync with no game logic. Every
-- member's datagrams are its state; each tick the newest state of every
-- member goes to the others (service room, moongate.relay). A game copies
-- this file to add rules (join_attempt, message) or interest management
-- (filter, or grid with room:position).
local M = {}

M.tick_rate = 20
M.sync = "state"

return M
