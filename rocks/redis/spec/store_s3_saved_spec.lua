-- A store's ledger and s3:// outs (issue 55, item 6): a rerun of batch and of generate over videos the store
-- recorded saved in the bucket fetches none again and writes none again, as the journal's does: the rules'
-- `whole` (rules.lua's key_answer) of an object out is its recorded path, which the store's key answer now
-- names.  bin/starvideos run as a child process against the emulator, a real redis-server and s3rver behind the
-- specs' SigV4-checking proxy (spec/npm/s3_server.js); the video GETs counted at the emulator, the
-- CompleteMultipartUploads and parts at the S3 server's log.
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local s3_run = require "rocks.s3.spec.support.s3_run"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local KEY = "sk-s3-store-saved-41c7"
local why = s3_run.missing() or redis_run.missing(true)

-- What the S3 server's log holds: CompleteMultipartUploads (POST ?uploadId) and parts PUT, answered 200.
local function writes(st)
  local completes, parts = 0, 0
  for _, e in ipairs(st.log()) do
    if e.status == 200 and e.method == "POST" and e.query.uploadId ~= nil then completes = completes + 1 end
    if e.status == 200 and e.method == "PUT" and e.part then parts = parts + 1 end
  end
  return completes, parts
end

-- The video GETs the emulator served.
local function video_gets(emu)
  local n = 0
  for _, r in ipairs(emu:requests()) do if r.method == "GET" and r.path:find("^/videos/") then n = n + 1 end end
  return n
end

describe("a store's rerun over videos saved in a bucket #hosts", function()
  local emu, st, srv
  s3_run.shared({ queued = 0, processing = 0.2, key = KEY }, function(s, e) st, emu = s, e end)
  require("busted").lazy_setup(function() if not why then srv = redis_run.start() end end)
  require("busted").lazy_teardown(function() if srv then srv.stop() end end)

  local function words(list)
    local w = { "env", "-u", "STARVIDEOS_STORE", "-u", "STARVIDEOS_JOURNAL", "STARVIDEOS_API_KEY=" .. q(KEY),
      "STARVIDEOS_BASE_URL=" .. q(emu.url), "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER",
      "AWS_ENDPOINT_URL=" .. q(st.url), q(helper.lua), q(helper.root .. "/bin/starvideos") }
    for _, a in ipairs(list) do w[#w + 1] = q(a) end
    w[#w + 1] = "--store " .. q(srv.url)
    return table.concat(w, " ")
  end
  local function run(list)
    local errfile = os.tmpname()
    local out, _, code = helper.capture(words(list) .. " </dev/null 2>" .. q(errfile))
    local err = helper.read_file(errfile) or ""
    os.remove(errfile)
    assert.is_nil((out .. err):find(KEY, 1, true), "the API key was printed")
    return { out = out, err = err, code = code }
  end

  it("batch --out-dir s3://: a rerun over 3 saved videos makes no video GET, no part, no complete", function()
    if why then return pending(why) end
    local dir = helper.tmpdir()
    local file = dir .. "/prompts.txt"
    helper.write_file(file, "a saved cat\na saved dog\na saved fish\n")
    local args = { "batch", "--prompts-file", file, "--out-dir", "s3://vids/saved/", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    local r = run(args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("3 videos: 3 saved in s3://vids/saved, 0 not", r.out, 1, true)
    for i = 1, 3 do assert.is_true(st.exists(string.format("saved/%04d.mp4", i))) end
    local completes, parts = writes(st)
    assert.equal(3, completes)
    local gets, creates = video_gets(emu), emu:creates()
    r = run { "list", "--check" }
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("3 files checked: 3 as saved", r.out, 1, true)
    r = run(args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("3 videos: 3 saved in s3://vids/saved, 0 not", r.out, 1, true)
    assert.equal(creates, emu:creates())
    assert.equal(gets, video_gets(emu)) -- (no video fetched again)
    assert.same({ completes, parts }, { writes(st) }) -- (no object written again)
    assert.equal(0, st.uploads_left())
  end)

  it("generate --out s3://: a rerun of a saved video fetches and writes nothing", function()
    if why then return pending(why) end
    local args = { "generate", "--model", "videos", "--prompt", "a saved owl", "--duration", "5", "--interval", "0.1",
      "--out", "s3://vids/one/owl.mp4" }
    local r = run(args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("saved s3://vids/one/owl.mp4", r.out, 1, true)
    local completes, parts = writes(st)
    local gets, creates = video_gets(emu), emu:creates()
    r = run(args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("s3://vids/one/owl.mp4", r.out, 1, true)
    assert.equal(creates, emu:creates())
    assert.equal(gets, video_gets(emu))
    assert.same({ completes, parts }, { writes(st) })
  end)

  -- The store's tasks of prompts beginning with `head` saved ({id = path}), as `list --json` reads them, and how
  -- many such tasks it holds.
  local function saved(head)
    local list, n = {}, 0
    for line in run({ "list", "--json" }).out:gmatch("[^\n]+") do
      local t = cjson.decode(line) or {}
      if t.id and type(t.prompt) == "string" and t.prompt:sub(1, #head) == head then
        n = n + 1
        if t.state == "downloaded" then list[t.id] = t.path end
      end
    end
    return list, n
  end

  it("batch killed once a video is saved: its rerun fetches and writes none of those the store holds saved",
    function()
    if why then return pending(why) end
    local dir = helper.tmpdir()
    emu:config { spread = 1 } -- (the tasks end apart: the kill finds some saved, most often not all)
    local file = dir .. "/prompts.txt"
    helper.write_file(file, "a killed cat\na killed dog\na killed fish\na killed owl\na killed yak\n")
    local args = { "batch", "--prompts-file", file, "--out-dir", "s3://vids/killed/", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    local p = helper.spawn(words(args) .. " </dev/null >/dev/null 2>&1")
    local before
    assert.is_true(helper.wait_until(function() -- (every create answered: the kill leaves none pending)
      local n
      before, n = saved("a killed ")
      return n == 5 and next(before) ~= nil
    end, 60), "no video saved")
    os.execute("kill -9 " .. p.pid)
    p:close()
    before = saved("a killed ") -- (what the store holds saved once the process is gone)
    local since, emu_since = #st.log(), #emu:requests()
    local r = run(args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("5 videos: 5 saved in s3://vids/killed, 0 not", r.out, 1, true)
    local again = {}
    for i, e in ipairs(st.log()) do
      for id, path in pairs(before) do
        if i > since and e.status == 200 and "s3:/" .. e.path == path then again[#again + 1] = id end
      end
    end
    for i, req in ipairs(emu:requests()) do
      for id in pairs(before) do
        if i > emu_since and req.path:find("/videos/" .. id .. ".mp4", 1, true) then again[#again + 1] = id end
      end
    end
    assert.same({}, again) -- (no video GET, part, complete nor copy of a saved one)
  end)
end)
