-- Time from the service (issue 28, item 4): a sender whose clock is 10 minutes
-- behind (Debian's faketime) signs its webhooks with the service's time, read
-- from the Date of its answers, so docs/webhooks.md's OpenResty receiver (a
-- 300 s tolerance, the usual) takes every one; the sender warns once that its
-- clock is off.  Real processes: the emulator, nginx with the receiver, the
-- sender under faketime.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

if nginx_run.pending_unless_ready("time from the service", { "nginx", "faketime" }) then return end

local notify_run = require "spec.support.notify_run"
local readme = require "spec.support.readme"

local q = helper.shell_quote
local KEY = "k-clock-skew-0123456789"
local SECRET = "whsec_JgVRKmU6J8n1MyQv4lLdQPim3S/tVC9c"
local N = 3

-- The sender: N generates with a webhook, each event and warning on a line.
local SENDER = [[
local starvideos = require "starvideos"
local url, hook, dir, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, journal = dir .. "/j",
  notify = { url = hook, secret = "]] .. SECRET .. [[" }, on_event = function(ev)
    if ev.type == "warning" or ev.type == "delivery" then
      io.write(ev.type, " ", tostring(ev.outcome or ""), " ", tostring(ev.message or ev.status or ""), "\n")
      io.stdout:flush()
    end
  end }
for i = 1, n do
  assert(client:generate({ model = "videos", prompt = "skew " .. i, duration = 5 },
    { out = dir .. "/v" .. i .. ".mp4", interval = 0.1 }))
end
client:close()
io.write("sent ", os.time(), "\n")
]]

describe("a sender whose clock is 10 minutes behind", function()
  local emu, run

  setup(function() emu = helper.emulator { key = KEY, queued = 0.1, processing = 0.2 } end)
  teardown(function()
    if run then run.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("signs with the service's time: the README's receiver takes every webhook; it warns once", function()
    local dir = helper.tmpdir()
    local log = dir .. "/hooks.log"
    run = readme.hook_receiver(dir, SECRET, nil, log)
    helper.write_file(dir .. "/sender.lua", SENDER)
    local out, ok = helper.capture("faketime -f -10m " .. q(helper.lua) .. " " .. q(dir .. "/sender.lua") .. " "
      .. q(emu.url) .. " " .. q("http://127.0.0.1:" .. run.port .. "/hook") .. " " .. q(dir) .. " " .. N .. " 2>&1")
    assert.truthy(ok, out)
    local sent = tonumber(out:match("sent (%d+)"))
    assert.is_true(sent and os.time() - sent > 540, "the sender's clock is 10 minutes behind: " .. out)
    local warnings = {}
    for line in out:gmatch("warning +([^\n]+)") do warnings[#warnings + 1] = line end
    assert.are.equal(1, #warnings, out)
    assert.matches("^this clock is [56]%d%d s behind the service's %(the Date of its answers%)", warnings[1])
    local ids, n = notify_run.hook_ids(log) -- each 200: the receiver verified it
    assert.are.equal(N, n, table.concat((function()
      local l = {}
      for id in pairs(ids) do l[#l + 1] = id end
      return l
    end)(), " "))
    assert.are.equal(N, #notify_run.hooks(log)) -- each taken at its first attempt
    assert.are.equal(N, select(2, out:gsub("delivery delivered", "")), out)
  end)
end)
