-- What the webhook specs share (spec/extras/notify_spec.lua, spec/hosts/notify_nginx_spec.lua):
-- the spec's Python receiver (spec/fixtures/webhook_receiver.py) and what
-- reached it, the access log of the README's OpenResty receiver
-- (spec/support/readme.lua's hook_receiver), 20 jobs stepped to their end (with
-- the receiver started 5 s late), and the video GETs the emulator logged.

local socket = require "socket"
local cjson = require "cjson"
local assert = require "luassert"
local helper = require "spec.helper"
local starvideos = require "starvideos"
local Notify = require "starvideos.extras.notify"

local q = helper.shell_quote

local M = {}

local function unhex(s) return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end

-- The Python receiver on port (nil: a free one) writing into dir:
-- { url = its /hook, port =, stop = fn }.
function M.receiver(dir, port)
  port = port or helper.free_ports(1)[1]
  local p = helper.spawn(helper.UNINSTRUMENTED .. "python3 " .. q(helper.root .. "/spec/fixtures/webhook_receiver.py")
    .. " " .. port .. " " .. q(dir))
  local line = p.pipe:read("*l")
  assert(line and line:match("^listening %d+$"), "the receiver did not start: " .. tostring(line))
  return { port = port, url = "http://127.0.0.1:" .. port .. "/hook", proc = p,
    stop = function() helper.execute("kill " .. p.pid); p:close() end }
end

-- What reached the Python receiver in dir: a list of {method, path, headers, body, raw}.
function M.received(dir)
  local out = {}
  for line in (helper.read_file(dir .. "/log") or ""):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    r.body, r.raw = unhex(r.body), line
    out[#out + 1] = r
  end
  return out
end

-- Every request the Python receiver in dir took, checked: a POST to /hook
-- signed with secret, the key nowhere, no Authorization; the events by
-- webhook-id (each decoded, raw_body its bytes) and how many.
function M.events_of(dir, key, secret)
  local by_id, n = {}, 0
  for _, r in ipairs(M.received(dir)) do
    assert.are.equal("POST", r.method)
    assert.are.equal("/hook", r.path)
    assert.is_nil(r.headers.authorization)
    assert.is_nil(r.raw:find(key, 1, true))
    assert.is_nil(r.body:find(key, 1, true))
    assert.is_true(starvideos.verify_webhook(secret, r.headers, r.body))
    local id = r.headers["webhook-id"][1]
    local ev = cjson.decode(r.body)
    if by_id[id] then
      assert.are.equal(by_id[id].raw_body, r.body) -- the same event each time
    else
      n = n + 1
      by_id[id] = ev
      ev.raw_body = r.body
    end
  end
  return by_id, n
end

-- The lines of the README receiver's access log (path): a list of
-- { id = webhook-id, status = "200", auth = the Authorization header or "-" }.
function M.hooks(path)
  local out = {}
  for line in (helper.read_file(path) or ""):gmatch("[^\n]+") do
    local id, status, auth = line:match("^(%S+) (%d+) (.*)$")
    out[#out + 1] = { id = id, status = status, auth = auth, line = line }
  end
  return out
end

-- The README receiver's access log checked: each request verified (200) and
-- without Authorization; the set of webhook-ids and how many.
function M.hook_ids(path)
  local ids, n = {}, 0
  for _, h in ipairs(M.hooks(path)) do
    assert.are.equal("200", h.status, h.line) -- the README's receiver verified it
    assert.are.equal("-", h.auth, h.line)     -- no Authorization header
    if not ids[h.id] then ids[h.id], n = true, n + 1 end
  end
  return ids, n
end

-- 20 tasks started as jobs of client, out in dir, stepped to their end
-- (each_step() after each step); the jobs, none failed.
function M.twenty(client, dir, each_step)
  local jobs = {}
  for i = 1, 20 do
    jobs[i] = assert(client:start({ model = "videos", prompt = "notify " .. i, duration = 5 },
      { out = dir .. "/v" .. i .. ".mp4", interval = 0.2 }))
  end
  local left = 20
  while left > 0 do
    left = left - #client:step(0.05)
    if each_step then each_step() end
  end
  for _, j in ipairs(jobs) do assert.is_nil(j.err) end
  return jobs
end

-- The events of the 20 jobs (by_id, n: M.events_of's): one task.completed
-- each, with its file's path, bytes and SHA-256 (sha256sum's).
function M.check_twenty(jobs, by_id, n)
  assert.are.equal(20, n)
  local seen = {}
  for id, ev in pairs(by_id) do
    assert.are.equal("task.completed", ev.type)
    assert.are.equal("completed", ev.task.status)
    assert.is_nil(seen[ev.task.id])
    seen[ev.task.id] = id
    assert.are.equal(ev.path, ev.task.path)
    assert.are.equal(helper.file_size(ev.path), ev.bytes)
    assert.are.equal(io.popen("sha256sum " .. helper.shell_quote(ev.path)):read("*a"):match("^%x+"), ev.sha256)
  end
  for _, j in ipairs(jobs) do assert.are.equal(Notify.id(j.id, "task.completed"), seen[j.id]) end
end

-- M.twenty while the receiver is down: start() is called 5 s after the first
-- job started, then client is stepped until done() (at most 60 s more).
-- Returns the jobs, and whether they all had ended before start() was called.
function M.late(client, dir, start, done)
  local t0, started = socket.gettime(), false
  local function due()
    if not started and socket.gettime() - t0 >= 5 then started = true; start() end
  end
  local jobs = M.twenty(client, dir, due)
  local ended_before = not started
  while not started do -- the jobs ended before 5 s: the deliveries wait
    client:step(0.1)
    due()
  end
  local deadline = socket.gettime() + 60
  repeat client:step(0.1) until done() or socket.gettime() > deadline
  return jobs, ended_before
end

-- The delivered records of a journal, in order: their webhook-ids, and the records.
function M.delivered(journal)
  local ids, recs = {}, {}
  for line in (helper.read_file(journal) or ""):gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    if rec.event == "delivered" then ids[#ids + 1], recs[#recs + 1] = rec.wid, rec end
  end
  return ids, recs
end

-- How many GETs of a video (.mp4) the emulator logged.
function M.video_gets(emu)
  local n = 0
  for _, r in ipairs(emu:requests()) do if r.method == "GET" and r.path:find("%.mp4") then n = n + 1 end end
  return n
end

return M
