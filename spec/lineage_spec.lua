-- Videos that build on videos (lua/starvideos/lineage.lua, docs/lineage.md) against the emulator, the ledger a
-- journal: again makes one create with the parent's recorded params changed, a rerun none; remix sends the parent's
-- video as a reference video (the parent's model, duration and ratio where none is given) and continue its last
-- frame as first_image (with a bucket: rocks/s3/spec); each child records its parent and relation; and the
-- refusals before paying, each with no request sent.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local cjson = require "cjson.safe"

local KEY = "k-lineage"

describe("again, remix and continue", function()
  local emu, dir, client, parent
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
    dir = helper.tmpdir()
    client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.2,
      min_interval = 0.1 }
    parent = assert(client:generate({ model = "videos", prompt = "a red fox", duration = 12, ratio = "4:3" },
      { out = dir .. "/parent.mp4" }))
  end)
  teardown(function()
    client:close()
    emu:stop()
    helper.cleanup()
  end)

  local function creates() return emu:creates() end
  local function last_body()
    local list, body = emu:requests(), nil
    for _, r in ipairs(list) do if r.method == "POST" and r.path:find("^/v1/") then body = r.body end end
    return cjson.decode(body)
  end

  it("again: one create of the parent's recorded params changed by the overrides; the same call again pays nothing",
    function()
      local before = creates()
      local t = assert(client:again(parent.id, { prompt = "a blue fox" }, { out = dir .. "/again.mp4" }))
      assert.equal(before + 1, creates())
      assert.same({ model = "videos", prompt = "a blue fox", duration = 12, ratio = "4:3" }, last_body())
      assert.same({ parent.id, "again" }, { t.parent, t.relation })
      local t2 = assert(client:again(parent.id, { prompt = "a blue fox" }, { out = dir .. "/again.mp4" }))
      assert.same({ before + 1, t.id }, { creates(), t2.id }, "a rerun follows its task")
      local kids = assert(client:tasks { parent = parent.id })
      assert.same({ { t.id, parent.id, "again" } }, { { kids[1].id, kids[1].parent, kids[1].relation } })
      local reopened = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl" }
      assert.equal("again", assert(reopened:tasks { parent = parent.id })[1].relation, "read back from the journal")
      reopened:close()
    end)

  it("refuses before paying, no request sent: a parent not in the ledger, no out, the parent's own file, a continue "
    .. "without last_image, a remix of a 12 s parent on O3, a parent whose file is not whole, a frame without a bucket",
    function()
      emu:clear()
      local out = { out = dir .. "/x.mp4" }
      local cases = {
        { function() return client:again("task-nope", {}, out) end, "task",
          "again: task task%-nope is not in the ledger %(" },
        { function() return client:again(parent.id, {}, {}) end, "out", "again: opts.out is required" },
        { function() return client:again(parent.id, {}, { out = dir .. "/parent.mp4" }) end, "out",
          "is task .*'s own file" },
        { function()
          local cwd = helper.capture("pwd"):gsub("%s+$", "")
          local _, depth = cwd:gsub("/[^/]+", "")
          return client:again(parent.id, {}, { out = string.rep("../", depth) .. (dir .. "/parent.mp4"):sub(2) })
        end, "out", "is task .*'s own file" }, -- (named relatively)
        { function() return client:continue(parent.id, { prompt = "on" }, out) end, "last_image",
          "params.last_image is required" },
        { function() return client:remix(parent.id, { model = "starvideos_o3", prompt = "remix" }, out) end,
          "referenceVideos[1]", "the video is 12 s long; starvideos_o3 takes one reference video of 3 to 10 s" },
        { function() return client:continue(parent.id, { prompt = "on", last_image = "https://example.com/e.png" },
          out) end, "storage.access_key", "no credentials" },
      }
      for i, c in ipairs(cases) do
        local ok, err = c[1]()
        assert.is_nil(ok, "case " .. i)
        assert.same({ "invalid_request", c[2] }, { err.kind, err.field }, err.message)
        assert.matches(c[3], err.message)
      end
      local before = helper.read_file(dir .. "/parent.mp4")
      helper.write_file(dir .. "/parent.mp4", before:sub(1, -2) .. "x")
      local ok, err = client:remix(parent.id, { prompt = "remix" }, out)
      helper.write_file(dir .. "/parent.mp4", before)
      assert.same({ nil, "invalid_request" }, { ok, err.kind })
      assert.matches("remix: task .*'s video is not whole: .* has SHA%-256", err.message)
      assert.equal(0, emu:creates(), "nothing was created (a remix without a bucket asks its parent's URL first)")
    end)

  it("remix without a bucket: the parent's video_url, while it is valid, as the reference video; the same call "
    .. "again pays nothing; a URL expired, refused as a local file without a bucket is, nothing created",
    function()
      emu:clear()
      local cartoon = { prompt = "as a cartoon", duration = 5 }
      local t = assert(client:remix(parent.id, cartoon, { out = dir .. "/remix.mp4" }))
      assert.equal(1, emu:creates())
      local refs = last_body().referenceVideos
      assert.same({ 1, true }, { #refs, refs[1]:sub(1, #emu.url + 8) == emu.url .. "/videos/" }, refs[1])
      assert.same({ parent.id, "remix" }, { t.parent, t.relation })
      local t2 = assert(client:remix(parent.id, cartoon, { out = dir .. "/remix.mp4" }))
      assert.same({ 1, t.id }, { emu:creates(), t2.id }, "a rerun follows its task")
      emu:config { url_ttl = 0 } -- (every video URL expired as it is given)
      local ok, err = client:remix(parent.id, { prompt = "as a sketch", duration = 5 }, { out = dir .. "/remix2.mp4" })
      emu:config { url_ttl = cjson.null }
      assert.same({ nil, "invalid_request" }, { ok, err.kind })
      assert.matches("storage", err.field)
      assert.equal(1, emu:creates())
    end)

  it("remix without a duration or a ratio: the parent's model, duration and ratio, as continue takes them; on "
    .. "starvideos_o3 not the duration and ratio it ignores beside a reference video (no warning)", function()
    emu:clear()
    local t = assert(client:remix(parent.id, { prompt = "as a watercolour" }, { out = dir .. "/watercolour.mp4" }))
    assert.equal(1, emu:creates())
    local body = last_body()
    assert.same({ "videos", 12, "4:3", 1 }, { body.model, body.duration, body.ratio, #body.referenceVideos })
    assert.same({ parent.id, "remix" }, { t.parent, t.relation })
    local o3 = assert(client:generate({ model = "starvideos_o3", prompt = "a grey owl", duration = 5, ratio = "1:1" },
      { out = dir .. "/owl.mp4" }))
    local r = assert(client:remix(o3.id, { prompt = "as an etching" }, { out = dir .. "/etching.mp4" }))
    body = last_body()
    assert.same({ "starvideos_o3", "as an etching", 1 }, { body.model, body.prompt, #body.referenceVideos })
    assert.same({ nil, nil }, { body.duration, body.ratio }, "the video's own")
    assert.same({}, r.warnings or {})
    assert.equal(3, emu:creates())
  end)

  it("hashes the parent's file where the transport does its disk work (nginx's: its thread pool), whose answer it "
    .. "trusts: a sum not the recorded one refuses the remix, nothing sent", function()
    -- libcurl's transport (a userdata) as one that offloads, as nginx's does (require(module)[fn](...) elsewhere)
    local real, seen = client.loop.transport, {}
    client.loop.transport = setmetatable({ offload = function(_, module, fn, path)
      seen[#seen + 1] = module .. "." .. fn .. " " .. path
      return seen.lie or require(module)[fn](path)
    end }, { __index = function(_, k)
      local v = real[k]
      if type(v) ~= "function" then return v end
      return function(_, ...) return v(real, ...) end
    end })
    local ok, t = pcall(client.remix, client, parent.id, { prompt = "as a print", duration = 5 },
      { out = dir .. "/print.mp4" })
    seen.lie = string.rep("0", 64)
    emu:clear()
    local ok2, t2, err = pcall(client.remix, client, parent.id, { prompt = "as a woodcut", duration = 5 },
      { out = dir .. "/woodcut.mp4" })
    client.loop.transport = real
    assert.is_true(ok, t)
    assert.is_table(t, "the remix through the offload")
    assert.same({ "starvideos.sign.sha256_file " .. dir .. "/parent.mp4",
      "starvideos.sign.sha256_file " .. dir .. "/parent.mp4" }, { seen[1], seen[2] })
    assert.is_true(ok2, t2)
    assert.is_nil(t2)
    assert.matches("video is not whole: .* has SHA%-256 0+; %x+ was saved", err.message)
    assert.equal(0, emu:creates())
  end)

  -- prog's text run by a child VM under `timeout 60` (a call that would hang is killed, not the spec), PATH
  -- first: what it wrote, stdout and stderr.
  local function child(body, path)
    local prog = dir .. "/child.lua"
    helper.write_file(prog, string.format("local c = require('starvideos').new { api_key = %q, base_url = %q, "
      .. "journal = %q }\n", KEY, emu.url, dir .. "/j.jsonl") .. body)
    local lua = helper.capture("command -v " .. helper.shell_quote(helper.lua)):gsub("%s+$", "")
    return helper.capture(helper.CHILD_ENV .. " PATH=" .. helper.shell_quote(path or "") .. ':"$PATH" timeout 60 '
      .. helper.shell_quote(lua) .. " " .. helper.shell_quote(prog) .. " 2>&1")
  end

  it("a parent whose saved file is a link to a FIFO, or an out that is one, is refused at once, nothing created",
    function()
    emu:clear()
    local fifo, video = dir .. "/fifo", dir .. "/parent.mp4"
    assert(helper.execute("mkfifo " .. helper.shell_quote(fifo) .. " && mv " .. helper.shell_quote(video) .. " "
      .. helper.shell_quote(video .. ".kept") .. " && ln -s " .. helper.shell_quote(fifo) .. " "
      .. helper.shell_quote(video)))
    local core = require "starvideos.core"
    assert.same({ "link", "other", "other" }, { core.file_kind(video), core.file_kind(video, true),
      core.file_kind(fifo, true) }, "file_kind: lstat, or with follow stat")
    local text = child(string.format([[
for _, how in ipairs { "remix", "continue" } do
  local ok, err = c[how](c, %q, { prompt = "on", last_image = "https://example.com/end.png" }, { out = %q })
  io.write(tostring(ok), " ", err.field, " ", err.message, "\n")
end
]], parent.id, dir .. "/z.mp4"))
    assert(helper.execute("mv " .. helper.shell_quote(video .. ".kept") .. " " .. helper.shell_quote(video)))
    local want = " is not a regular file (a FIFO, a device or a socket) (nothing was sent)"
    assert.equal(string.format("nil task remix: task %s's video %s%s\nnil task continue: task %s's video %s%s\n",
      parent.id, video, want, parent.id, video, want), text)
    local ok, err = client:again(parent.id, {}, { out = fifo })
    assert.same({ nil, "out", "again: opts.out " .. fifo .. want }, { ok, err.field, err.message })
    assert.equal(0, emu:creates())
  end)

  it("continue's ffmpeg runs under the call's timeout: one that hangs is stopped then, refused, nothing sent",
    function()
    emu:clear()
    local bin = dir .. "/hung"
    assert(helper.execute("mkdir -p " .. helper.shell_quote(bin)))
    helper.write_file(bin .. "/ffmpeg", "#!/bin/sh\nexec sleep 100\n")
    assert(helper.execute("chmod +x " .. helper.shell_quote(bin .. "/ffmpeg")))
    local text = child(string.format([[
local ok, err = c:continue(%q, { prompt = "on", last_image = "https://example.com/end.png" }, { out = %q,
  timeout = 1 })
io.write(tostring(ok), " ", err.field, " ", err.message)
]], parent.id, dir .. "/w.mp4"), bin)
    assert.matches("^nil ffmpeg continue: ffmpeg could not take the last frame of .*: ffmpeg ran past the call's "
      .. "timeout %(1 s%)", text)
    assert.same({}, emu:requests())
  end)

  it("continue without ffmpeg on PATH: refused, naming ffmpeg, nothing sent", function()
    emu:clear()
    local prog = dir .. "/noffmpeg.lua"
    helper.write_file(prog, string.format([[
local c = require("starvideos").new { api_key = %q, base_url = %q, journal = %q }
local ok, err = c:continue(%q, { prompt = "on", last_image = "https://example.com/end.png" }, { out = %q })
io.write(tostring(ok), " ", err.field, " ", err.message)
]], KEY, emu.url, dir .. "/j.jsonl", parent.id, dir .. "/y.mp4"))
    local lua = helper.capture("command -v " .. helper.shell_quote(helper.lua)):gsub("%s+$", "")
    local text = helper.capture(helper.CHILD_ENV .. " PATH=/nonexistent " .. helper.shell_quote(lua) .. " "
      .. helper.shell_quote(prog) .. " 2>&1")
    assert.matches("^nil ffmpeg continue: ffmpeg is not on PATH", text)
    assert.same({}, emu:requests())
  end)

  it("without ffmpeg on PATH under LuaJIT (nginx's VM, whose os.execute gives 256 for a command that failed): "
    .. "the refusal names ffmpeg", function()
    local cpath = helper.root .. "/build/luajit/?.so"
    if not (helper.execute("command -v luajit >/dev/null 2>&1") and helper.exists(cpath:gsub("%?", "starvideos/core")))
    then pending("luajit and make luajit's modules") return end
    local text = helper.capture("env LUA_PATH=" .. helper.shell_quote(helper.lua_path(helper.root) .. ";;")
      .. " LUA_CPATH=" .. helper.shell_quote(cpath .. ";;") .. " PATH=/nonexistent " .. helper.shell_quote(
      helper.capture("command -v luajit"):gsub("%s+$", "")) .. " -e " .. helper.shell_quote(
      "io.write(select(2, require('starvideos.lineage').last_frame('/nonexistent/p.mp4', '/nonexistent/f.png')))")
      .. " 2>&1")
    assert.matches("^ffmpeg is not on PATH", text)
  end)
end)
