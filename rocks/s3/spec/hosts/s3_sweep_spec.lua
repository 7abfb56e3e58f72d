-- keep and resume abort the multipart uploads the library started and left (storage/sweep.lua; docs/storage.md):
-- only at keys the ledger names, only those no unfinished task holds, only those begun more than a day ago (the
-- store's Initiated).  The store: s3rver behind the specs' SigV4-checking proxy (rocks/s3/spec/support/s3_run.lua), its
-- uploads counted in its own folder before and after; an upload aged by setting its key file's time back (the
-- proxy's Initiated).  The leftover uploads are made as a process killed after its CreateMultipartUpload leaves
-- them: the library's own request shape, sent by LuaSocket.
local helper = require "spec.helper"
local cjson = require "cjson"
local s3_run = require "rocks.s3.spec.support.s3_run"
local starvideos = require "starvideos"
local S3 = require "starvideos.storage.s3"

local why = s3_run.missing()

describe("keep and resume abort the stale uploads of ours", function()
  local emu, st
  s3_run.shared({ queued = 0, processing = 0.2 }, function(s, e) st, emu = s, e end)

  local function client(journal)
    return starvideos.new { base_url = emu.url, api_key = emu.key, journal = journal, interval = 0.1,
      storage = { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER" },
      on_event = function(ev) if ev.type == "warning" then io.stderr:write("warning: ", ev.message, "\n") end end }
  end

  -- An upload begun at key (CreateMultipartUpload) and left; days: its age.  Its id.
  local function leave_upload(key, days)
    local store = assert(S3.store_of { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER" })
    local r = assert(S3.request(store, "create", "vids", key, { checksum = "sha256" }))
    local headers = {}
    for name, value in r.headers:gmatch("([^:\n]+): ([^\n]*)\n") do headers[name] = value end
    local out = {}
    local _, code = require("socket.http").request { url = r.url, method = r.method, headers = headers,
      sink = require("ltn12").sink.table(out) }
    assert.equal(200, code, table.concat(out))
    local id = assert(S3.xml(table.concat(out), "UploadId"))
    if days then
      assert(helper.execute(string.format("touch -d '%d days ago' %s", days,
        helper.shell_quote(st.dir .. "/vids/._S3rver_uploads/" .. id .. "/key"))))
    end
    return id
  end
  local function uploads() -- the ids of the uploads in progress, in s3rver's own folder
    local set = {}
    for _, id in ipairs(helper.listing(st.dir .. "/vids/._S3rver_uploads")) do set[id] = true end
    return set
  end
  for _, how in ipairs { "keep", "resume" } do
    it(how .. ": an old upload at a key of ours aborted; a young one, one at another key, one a task holds: left",
      function()
      if why then pending(why) return end
      local dir = helper.tmpdir()
      local journal, pre = dir .. "/j.jsonl", "sw-" .. how .. "/"
      emu:config { video_size = 300 * 1000 }
      local c = client(journal)
      local task, err = c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = "s3://vids/" .. pre
        .. "a.mp4" })
      c:close()
      assert.truthy(task, tostring(err))
      local old = leave_upload(pre .. "a.mp4", 2) -- (a run killed after its create: never recorded)
      local young = leave_upload(pre .. "a.mp4") -- (as a live process's, not yet recorded)
      local other = leave_upload(pre .. "not-ours.mp4", 2) -- (a key no task of the ledger names)
      -- a task whose upload is recorded, its process gone: keep and resume go on from it (its upload 2 days old)
      helper.write_file(journal, helper.read_file(journal) .. cjson.encode { event = "created", id = "task_held",
        model = "videos", out = "s3://vids/" .. pre .. "held.mp4", time = os.time() } .. "\n")
      local held = leave_upload(pre .. "held.mp4", 2)
      helper.write_file(journal, helper.read_file(journal) .. cjson.encode { event = "upload", id = "task_held",
        path = "s3://vids/" .. pre .. "held.mp4", upload = cjson.encode { upload = held, parts = {},
          checksum = "sha256" }, time = os.time() } .. "\n")
      local before = uploads()
      for _, id in ipairs { old, young, other, held } do assert.is_true(before[id]) end
      c = client(journal)
      local res, rerr = c[how](c, { once = how == "keep" or nil, timeout = how == "keep" and 20 or 5 })
      assert.truthy(res, tostring(rerr))
      c:close()
      local after = uploads() -- (s3rver's folder: the proxy's log line may come after the answer)
      assert.is_nil(after[old], "the old upload of ours was not aborted")
      assert.is_true(after[young], "a young upload was aborted")
      assert.is_true(after[other], "an upload at a key not of ours was aborted")
      assert.is_true(after[held], "the upload a task holds was aborted")
      assert.is_true(st.exists(pre .. "a.mp4"), "the object was touched")
      before[old] = nil -- (the uploads at the store after: all that were there but the old one)
      assert.same(before, uploads())
    end)
  end
end)
