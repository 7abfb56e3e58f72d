-- A client on an emulator with fast retries, its events collected in client.events
-- (client_spec, request_ids_spec).
local starvideos = require "starvideos"

local M = {}

-- A client on emu (its key and URL), opts over the defaults.
function M.new(emu, opts)
  local events = {}
  local o = { api_key = emu.key, base_url = emu.url, retry_backoff = 0.01,
    on_event = function(ev) events[#events + 1] = ev end }
  for k, v in pairs(opts or {}) do o[k] = v end
  local client = starvideos.new(o)
  client.events = events
  return client
end

-- The events of client of one type, in order.
function M.of(client, kind)
  local list = {}
  for _, ev in ipairs(client.events) do if ev.type == kind then list[#list + 1] = ev end end
  return list
end

return M
