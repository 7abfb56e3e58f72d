-- The command line with s3:// outs (docs/cli.md, docs/storage.md; issue 39): generate --out, batch --out-dir,
-- list showing an upload in progress, then resume.  bin/starvideos run as a child process against the emulator,
-- the store s3rver behind the specs' SigV4-checking proxy (rocks/s3/spec/support/s3_run.lua), the objects counted in
-- its folder and read back by the AWS SDK.
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local s3_run = require "rocks.s3.spec.support.s3_run"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local KEY = "sk-s3-cli-7e1d"
local MB = 1000 * 1000
local why = s3_run.missing()

describe("the command line with s3:// outs", function()
  local emu, st
  s3_run.shared({ queued = 0, processing = 0.2, key = KEY }, function(s, e) st, emu = s, e end)

  -- bin/starvideos with args: the service's key and URL, the store's in AWS_* (as a user gives them).
  local function words(list)
    local w = { "env", "-u", "STARVIDEOS_STORE", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL=" .. q(emu.url),
      "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER", "AWS_ENDPOINT_URL=" .. q(st.url), q(helper.lua),
      q(BIN) }
    for _, a in ipairs(list) do w[#w + 1] = q(a) end
    return table.concat(w, " ")
  end
  local function run(dir, list) -- { out, err, code }
    local out, _, code = helper.capture(words(list) .. " </dev/null 2>" .. q(dir .. "/stderr"))
    local r = { out = out, err = helper.read_file(dir .. "/stderr") or "", code = code }
    assert.is_nil((r.out .. r.err):find(KEY, 1, true), "the API key was printed")
    assert.is_nil((r.out .. r.err):find("S3RVER", 1, true), "the secret key was printed")
    return r
  end
  -- The objects s3rver holds under prefix (its own folder: what the server has, whatever the client says).
  local function objects(prefix)
    local list = {}
    local found = helper.capture("cd " .. q(st.dir .. "/vids") .. " 2>/dev/null && find . -name '*._S3rver_object'")
    for name in found:gmatch("%./([^\n]+)%._S3rver_object") do
      if name:sub(1, #prefix) == prefix then list[#list + 1] = name end
    end
    table.sort(list)
    return list
  end
  local function journal_sha(journal, out) -- the SHA-256 the journal recorded for out
    local sum
    for l in (helper.read_file(journal) or ""):gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e and e.event == "downloaded" and e.path == out then sum = e.sha256 end
    end
    return sum
  end

  it("generate --out s3://: the object whole (the SDK's SHA-256 = the journal's), its size shown, list --check ok",
    function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 7 * MB }
    local journal = dir .. "/j.jsonl"
    local r = run(dir, { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
      "--out", "s3://vids/gen/cat.mp4", "--journal", journal })
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ "gen/cat.mp4", "gen/cat.mp4.json" }, objects("gen/")) -- (the video and its provenance record)
    local back = st.video("gen/cat.mp4") -- (the served video in it, up to the mark's box: back.served)
    assert.equal(7 * MB, back.served)
    assert.matches(string.format("saved s3://vids/gen/cat.mp4 (6.7 MiB, %d bytes)", back.bytes), r.out, 1, true)
    assert.equal(journal_sha(journal, "s3://vids/gen/cat.mp4"), back.sha256)
    local rec = assert(helper.read_file(st.dir .. "/vids/gen/cat.mp4.json._S3rver_object"))
    assert.same({ back.sha256, back.bytes }, { cjson.decode(rec).video.sha256, cjson.decode(rec).video.bytes })
    for _, secret in ipairs { KEY, "S3RVER" } do assert.is_nil(rec:find(secret, 1, true), "the record holds it") end
    r = run(dir, { "list", "--journal", journal, "--check" })
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("1 file checked: 1 as saved", r.out, 1, true)
    assert.equal(0, st.uploads_left())
  end)

  it("batch --out-dir s3://bucket/prefix: one object per entry, a rerun sends nothing; without a ledger: exit 2",
    function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 300 * 1000 }
    local file, journal = dir .. "/prompts.txt", dir .. "/batch.jsonl"
    helper.write_file(file, "a cat\na dog\na fish\n")
    local args = { "batch", "--prompts-file", file, "--out-dir", "s3://vids/batch/", "--model", "videos",
      "--duration", "5", "--interval", "0.1", "--journal", journal }
    local creates = #emu:tasks()
    local r = run(dir, args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("3 videos: 3 saved in s3://vids/batch, 0 not\n", r.out, 1, true)
    assert.same({ "batch/0001.mp4", "batch/0001.mp4.json", "batch/0002.mp4", "batch/0002.mp4.json", "batch/0003.mp4",
      "batch/0003.mp4.json" }, objects("batch/"))
    for i = 1, 3 do
      local key = string.format("batch/%04d.mp4", i)
      assert.equal(journal_sha(journal, "s3://vids/" .. key), st.read(key).sha256)
    end
    assert.equal(creates + 3, #emu:tasks())
    local puts = s3_run.parts(st.log())
    r = run(dir, args)
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal(creates + 3, #emu:tasks()) -- (nothing created again)
    assert.equal(puts, s3_run.parts(st.log())) -- (nothing sent to the store again)
    args[#args - 1], args[#args] = nil, nil -- no --journal: a bucket holds no journal
    r = run(dir, args)
    assert.equal(2, r.code, r.out .. r.err)
    assert.matches('--out-dir "s3://vids/batch/" is a bucket: give --journal PATH or --store URL', r.err, 1, true)
    args[5] = "s3://NO/x"
    args[#args + 1], args[#args + 2] = "--journal", journal
    r = run(dir, args)
    assert.equal(2, r.code, r.out .. r.err)
    assert.matches("is not an object URL: the bucket must be", r.err, 1, true)
    assert.equal(creates + 3, #emu:tasks())
    assert.equal(0, st.uploads_left())
  end)

  it("list shows a killed generate's upload in progress (uploading, its parts), resume completes it", function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 40 * MB }
    local journal, key = dir .. "/j.jsonl", "killed/cat.mp4"
    local p = helper.spawn(words { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
      "--interval", "0.1", "--out", "s3://vids/" .. key, "--journal", journal } .. " </dev/null >/dev/null 2>&1")
    local function recorded() -- the parts the journal holds for the upload now (the child writes it)
      local n = 0
      for l in helper.whole_lines(journal) do
        local e = cjson.decode(l)
        if e and e.event == "upload" then n = type(e.upload) == "string" and #cjson.decode(e.upload).parts or 0 end
      end
      return n
    end
    assert.is_true(helper.wait_until(function() return recorded() >= 2 end, 120), "no part recorded")
    os.execute("kill -9 " .. p.pid)
    p:close()
    local parts = recorded()
    assert.is_true(parts < 8, "the upload ended before the kill") -- (40 MB: 8 parts of 5 MiB)
    local r = run(dir, { "list", "--journal", journal })
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("uploading, " .. parts .. " parts", r.out, 1, true)
    assert.matches("s3://vids/" .. key, r.out, 1, true)
    local doc = cjson.decode(run(dir, { "list", "--journal", journal, "--json" }).out:match("[^\n]+")) -- (a line each)
    assert.equal(parts, doc and doc.uploading and doc.uploading.parts)
    assert.same({}, objects("killed/")) -- (not at its key before it is whole)
    assert.equal(1, st.uploads_left())
    r = run(dir, { "resume", "--journal", journal, "--interval", "0.1" })
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ key, key .. ".json" }, objects("killed/")) -- (its provenance record written by the resume)
    local back = st.video(key) -- (the served video in it, up to the mark's box: back.served)
    assert.equal(40 * MB, back.served)
    assert.equal(journal_sha(journal, "s3://vids/" .. key), back.sha256)
    assert.equal(0, st.uploads_left())
    r = run(dir, { "list", "--journal", journal })
    assert.is_nil(r.out:find("uploading", 1, true), r.out)
    assert.matches("1 task: 1 downloaded", r.out, 1, true)
  end)
end)
