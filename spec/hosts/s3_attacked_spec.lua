-- The bucket attacked (issue 49): a store that answers as S3 can but rarely does (a 200 whose body is an <Error>,
-- a part's ETag that is not its bytes' MD5), and a kill -9 right after a part's answer.  The store: s3rver behind
-- the specs' SigV4-checking proxy, its faults switched on by the spec (spec/support/s3_run.lua, st.fault); the
-- videos: the emulator's.  Each run is a process of its own, killed if it outlives its deadline: nothing hangs.
local helper = require "spec.helper"
local cjson = require "cjson"
local s3_run = require "spec.support.s3_run"

local MB = 1000 * 1000
local why = s3_run.missing()

-- A process that generates to out (journal: its ledger) within `timeout` s and prints its result as JSON.
local GEN = [[
local starvideos = require "starvideos"
local base, key, port, out, journal, timeout = arg[1], arg[2], arg[3], arg[4], arg[5], tonumber(arg[6])
local c = starvideos.new { base_url = base, api_key = key, journal = journal, retry_backoff = 0.01,
  storage = { endpoint = "http://127.0.0.1:" .. port, access_key = "S3RVER", secret_key = "S3RVER" } }
local task, err = c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = out, interval = 0.1,
  timeout = timeout })
c:close()
io.stdout:write(require("cjson").encode { path = task and task.path, sha256 = task and task.sha256,
  err = err and tostring(err), kind = err and err.kind }, "\n")
]]

-- One run (a process) to out within timeout s: its result ({hung = true} when it outlived timeout + 15 s: killed).
local function run(dir, emu, st, out, timeout)
  helper.write_file(dir .. "/gen.lua", GEN)
  local words = { "timeout", "-s", "KILL", tostring(timeout + 15), helper.lua, dir .. "/gen.lua", emu.url, emu.key,
    tostring(st.port), out, dir .. "/j.jsonl", tostring(timeout) }
  for i, w in ipairs(words) do words[i] = helper.shell_quote(w) end
  local text, _, code = helper.capture(table.concat(words, " ") .. " 2>&1")
  local line = text:match("(%b{})%s*$")
  local r = line and cjson.decode(line) or { err = text }
  r.hung, r.text = code == 137 or nil, text
  return r
end

-- The journal's records of event ev (in order).
local function records(dir, ev)
  local list = {}
  for l in (helper.read_file(dir .. "/j.jsonl") or ""):gmatch("[^\n]+") do
    local e = cjson.decode(l)
    if e.event == ev then list[#list + 1] = e end
  end
  return list
end

describe("the bucket attacked: its answers, and a kill after a part", function()
  local st, emu
  setup(function()
    if why then return end
    emu = helper.emulator { queued = 0, processing = 0.2 }
    emu:config { video_size = 12 * MB } -- (3 parts of 5 MiB)
    st = s3_run.start {}
  end)
  teardown(function()
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  for _, case in ipairs {
    { "complete_error", "a CompleteMultipartUpload done but answered 200 with an <Error>" },
    { "complete_undone", "a CompleteMultipartUpload not done, answered 200 with an <Error>" },
    { "copy_error", "the copy that adds x-amz-meta-sha256 answered 200 with an <Error>" },
  } do
    it(case[2] .. ": the run fails naming it; the rerun makes the object whole with its SHA-256, 0 creates",
      function()
      if why then pending(why) return end
      local dir, key = helper.tmpdir(), case[1] .. ".mp4"
      local out = "s3://vids/" .. key
      st.fault { [case[1]] = 1 }
      local before = emu:creates()
      local r = run(dir, emu, st, out, 30)
      assert.is_nil(r.hung, r.text)
      assert.are.equal(0, st.faults_left()[case[1]], "the fault was not met")
      assert.is_nil(r.path, r.text)
      assert.truthy(tostring(r.err):find("InternalError", 1, true), r.text)
      assert.are.equal(before + 1, emu:creates())
      local again = run(dir, emu, st, out, 30)
      assert.is_nil(again.hung, "the rerun hung: " .. again.text)
      assert.are.equal(out, again.path, again.text)
      assert.are.equal(before + 1, emu:creates(), "the rerun paid again")
      local back = st.read(key)
      assert.are.equal(12 * MB, back.bytes)
      assert.are.same({ again.sha256, again.sha256 }, { back.sha256, back.meta }, cjson.encode(back))
      assert.are.equal(0, st.uploads_left())
      local saved = records(dir, "downloaded")
      assert.are.same({ out, again.sha256 }, { saved[#saved].path, saved[#saved].sha256 })
    end)
  end
end)
