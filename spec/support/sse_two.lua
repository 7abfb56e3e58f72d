-- A place of client:sse's case list (spec/support/sse_cases.lua) on a ledger two processes share (a journal: spec/
-- sse_journal_spec.lua; a store: rocks/redis/spec/hosts/sse_redis_spec.lua): each task run by process A (a child:
-- its own client of the key on that ledger, one generate, closed), every stream opened in process B (this one:
-- its client on the same ledger, stepped).  And A's own stream, for a Last-Event-ID given by A.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local cases = require "spec.support.sse_cases"

local M = {}

-- Process A: a generate of one task (its tenant, prompt, out); with a stream file, its own stream's text written
-- there once its task is saved.
local CHILD = [[
local cjson = require "cjson"
local starvideos = require "starvideos"
local key, url, ledger, tenant, prompt, out, stream_to = ...
local opts = cjson.decode(ledger)
opts.api_key, opts.base_url, opts.requests_per_second = key, url, 1e6
local c = starvideos.new(opts)
local chunks = {}
if stream_to ~= "" then c:sse { tenant = tenant, write = function(ch) chunks[#chunks + 1] = ch; return true end } end
local ok, err = c:generate({ model = "videos", prompt = prompt, duration = 5 },
  { out = out, tenant = tenant, interval = 0.2 })
if stream_to ~= "" then
  local deadline = os.time() + 20
  while not table.concat(chunks):find("event: saved", 1, true) and os.time() < deadline do c:step(0.05) end
  local f = assert(io.open(stream_to .. ".tmp", "wb"))
  f:write(table.concat(chunks))
  f:close()
  assert(os.rename(stream_to .. ".tmp", stream_to))
end
c:close()
print(ok and "saved" or tostring(err and err.message))
]]

-- The place: emu the emulator, dir a folder, ledger what both processes' starvideos.new take to share it
-- ({journal = PATH} or {store = URL}); out(n) the n-th task's out (a file in dir unless given).
function M.place(emu, dir, ledger, out)
  local opts = { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6 }
  for k, v in pairs(ledger) do opts[k] = v end
  local client = starvideos.new(opts)
  local p, made, procs = { emu = emu, client = client }, 0, {}
  out = out or function(n) return dir .. "/" .. n .. ".mp4" end
  function p.start(o, stream_to)
    made = made + 1
    procs[#procs + 1] = helper.run_lua(dir, "a" .. made, CHILD, { emu.key, emu.url, require("cjson").encode(ledger),
      o.tenant or "", o.prompt, out(made), stream_to or "" })
  end
  p.open, p.until_ = cases.opener(client)
  -- What each child said (its last line: "saved" or its error's words), all of them ended.
  function p.stop()
    local said = {}
    for i, proc in ipairs(procs) do said[i] = proc.pipe:read("*a"); proc:close() end
    client:close()
    return said
  end
  return p
end

-- The case of a stream that comes back to B with the last id A's stream wrote: the rest, nothing twice.
function M.resumed(p, dir, assert)
  local t = "resumed-" .. os.time()
  local stream_to = dir .. "/a-stream.txt"
  p.start({ tenant = t, prompt = "a run A streamed" }, stream_to)
  assert.is_true(p.until_(function() return helper.exists(stream_to) end, 60), "A wrote no stream")
  local all = cases.parse(helper.read_file(stream_to))
  assert.are.equal("saved", (all[#all] or {}).event, "A's stream: " .. helper.read_file(stream_to))
  cases.resume(p, t, all, assert)
end

return M
