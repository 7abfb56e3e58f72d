-- The queue's keepers for the hosts specs of client:submit (rocks/redis/spec/hosts/queue_store_spec.lua,
-- queue_sentinel_spec.lua, queue_bucket_spec.lua): keeper processes whose client options are given as JSON, the
-- entries a submit queues, and the creates the emulator received, counted.
local helper = require "spec.helper"
local cjson = require "cjson.safe"

local M = {}

-- A keeper's program: keep (args: the client's options as JSON, the folder, the timeout, the lease), "keeping" first,
-- then a line "made ID" as each of its creates is answered, its warnings ("warning MESSAGE"), and at its end
-- "ended: N" (its results) or "ended: ERROR".
M.KEEPER = [=[
local starvideos = require "starvideos"
local cjson = require "cjson"
local opts, dir, timeout, lease = cjson.decode(arg[1]), arg[2], tonumber(arg[3]), tonumber(arg[4])
local function say(...) io.write(table.concat({ ... }, " "), "\n"); io.stdout:flush() end
opts.lease, opts.interval = lease, 0.5
opts.on_event = function(ev) if ev.type == "warning" then say("warning", tostring(ev.message)) end end
local client = starvideos.new(opts)
say("keeping")
local seen = {}
local results, err = client:keep { dir = dir, lease = lease, interval = 0.5, timeout = timeout,
  on_progress = function(ev)
    if ev.type == "status" and ev.id and not seen[ev.id] then seen[ev.id] = true; say("made", ev.id) end
  end }
say("ended:", results and #results or tostring(err))
client:close()
]=]

-- A keeper process in dir (its options: opts, JSON-encodable; videos its folder; timeout, lease in seconds), once it
-- said "keeping": helper.run_lua's process.
function M.keeper(dir, name, opts, videos, timeout, lease)
  local p = helper.run_lua(dir, name, M.KEEPER, { assert(cjson.encode(opts)), videos, tostring(timeout),
    tostring(lease) })
  assert(p.pipe:read("*l") == "keeping", "the keeper " .. name .. " did not start")
  return p
end

-- What the keepers procs said so far (their lines but "made"), for a failure's message: the keepers are killed.
function M.said(procs)
  local out = {}
  for i, p in ipairs(procs) do
    helper.execute("kill -9 " .. p.pid .. " 2>/dev/null")
    for l in (p.pipe:read("*a") or ""):gmatch("[^\n]+") do
      if not l:find("^made ") and #out < 40 then out[#out + 1] = "keeper " .. i .. ": " .. l end
    end
  end
  return table.concat(out, "\n")
end

-- Waits (at most `seconds`) until client c's batch id has n entries saved: its counts, or raises with them and why()
-- (what the keepers said: the failure's evidence).
function M.saved(c, id, n, seconds, why)
  local counts
  if helper.wait_until(function()
    helper.sleep(0.2) -- (the batch asked 5 times a second)
    counts = c:batch(id)
    return counts and counts.saved == n
  end, seconds) then return counts end
  error(cjson.encode(counts) .. "\n" .. tostring(why and why() or ""), 2)
end

-- n entries whose prompts are "WORD i".
function M.entries(n, word)
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = word .. " " .. i, duration = 5 } end
  return list
end

-- The creates the emulator received: {n = how many, twice = the prompts created more than once, prompts = prompt ->
-- its count}.
function M.creates(emu)
  local seen, n, twice = {}, 0, 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then
      local p = tostring((cjson.decode(r.body) or {}).prompt)
      n, seen[p] = n + 1, (seen[p] or 0) + 1
      if seen[p] == 2 then twice = twice + 1 end
    end
  end
  return { n = n, twice = twice, prompts = seen }
end

return M
