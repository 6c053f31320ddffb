-- room_lockstep: the "lockstep" room mode: frame sync with no game logic.
-- Members send inputs (reliable messages starting with "I"); each tick the
-- room sends the frame, every input of that tick, to every member (service
-- room, moongate.frames). A member that fell behind catches up from the
-- last `history` frames, or gets a resync.
local M = {}

M.tick_rate = 20
M.sync = "frame"
M.history = 256

return M
