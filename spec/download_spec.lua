-- An `out` that cannot be written is found before the create (which costs
-- money), not after the task was paid for and polled to completion: in the
-- library (generate, start), the command line, and a C host linking the static
-- library (inside nginx: spec/hosts/nginx_spec.lua).  When the write fails after the
-- completion anyway, the error says how to fetch the video.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local SAMPLE = assert(require("starvideos.emulator.files").video(5))
local KEY = "sk-out-check-5d1e"

local listing = helper.listing

local function is_root()
  return helper.capture("id -u"):match("^0%s*$") ~= nil
end

-- A folder that exists and that even root may not make a file in (sysfs), or
-- nil and why not, when this machine lets one be made there after all.
local function unwritable_folder()
  local dir = "/sys/kernel"
  local probe = dir .. "/starvideos-spec-probe"
  local f = io.open(probe, "wb")
  if f then
    f:close()
    os.remove(probe)
    return nil, dir .. " takes new files here"
  end
  if not helper.exists(dir) then return nil, "there is no " .. dir .. " here" end
  return dir
end

-- The command line: { out =, err =, code = }; prefix: put before the command
-- (runuser ..., say).
local function cli(emu, args, prefix)
  local parts = { prefix or "", "env -u STARVIDEOS_API_KEY STARVIDEOS_API_KEY=" .. q(KEY),
    "STARVIDEOS_BASE_URL=" .. q(emu.url), q(helper.lua), q(BIN) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local errfile = os.tmpname()
  local out, _, code = helper.capture(table.concat(parts, " ") .. " </dev/null 2>" .. q(errfile))
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  return { out = out, err = err, code = code }
end

local function creates(emu)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" then n = n + 1 end
  end
  return n
end

local CAT = { model = "videos", prompt = "a cat on a skateboard", duration = 5 }
local CAT_ARGS = { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.05" }

local function with(list, ...)
  local t = {}
  for _, v in ipairs(list) do t[#t + 1] = v end
  for _, v in ipairs { ... } do t[#t + 1] = v end
  return t
end

describe("an out that cannot be written", function()
  local emu

  shared_emulator({ key = KEY, queued = 0.05, processing = 0.05 }, function(e) emu = e end)

  local function new_client()
    return starvideos.new { api_key = KEY, base_url = emu.url }
  end

  -- generate's error for out: kind io, field out, the path and the reason named.
  local function refused(out, reason)
    local client = new_client()
    local task, err = client:generate(CAT, { out = out, interval = 0.05 })
    client:close()
    assert.is_nil(task)
    assert.equal("io", err.kind, tostring(err))
    assert.equal("out", err.field)
    assert.truthy(err.message:find("cannot write " .. out, 1, true), err.message)
    assert.truthy(err.message:find(reason, 1, true), err.message)
    assert.truthy(err.message:find("nothing was sent", 1, true), err.message)
    assert.is_nil(err.id)
    assert.same({}, emu:requests()) -- not even a query: nothing was paid for
    return err
  end

  describe("in the library", function()
    it("generate refuses an out in a folder that does not exist, sending nothing", function()
      local dir = helper.tmpdir()
      refused(dir .. "/missing/cat.mp4", "the folder " .. dir .. "/missing does not exist")
      assert.same({}, listing(dir))
    end)

    it("generate refuses an out in a folder that takes no new file, even for root", function()
      local dir, why = unwritable_folder()
      if not dir then pending(why) return end
      refused(dir .. "/cat.mp4", "the folder " .. dir .. " is not writable (Permission denied)")
    end)

    it("generate refuses an out under a file, an out that is a folder, and a .part that is one", function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/file", "x")
      refused(dir .. "/file/cat.mp4", dir .. "/file is not a folder")
      refused(dir, dir .. " is a folder")
      assert(helper.execute("mkdir " .. q(dir .. "/cat.mp4.part")))
      refused(dir .. "/cat.mp4", dir .. "/cat.mp4.part is a folder")
      assert.same({ "cat.mp4.part", "file" }, listing(dir))
    end)

    it("refuses a FIFO at out or at its .part at once, without opening it (it would wait for a writer)", function()
      local dir = helper.tmpdir()
      assert(helper.execute("mkfifo " .. q(dir .. "/fifo.mp4") .. " " .. q(dir .. "/cat.mp4.part")))
      -- in a child under timeout: opening a FIFO would hang this process, not fail it
      local script = ([[
        local starvideos = require "starvideos"
        local client = starvideos.new { api_key = %q, base_url = %q }
        for _, out in ipairs { %q, %q } do
          local task, err = client:generate({ model = "videos", prompt = "a cat", duration = 5 },
            { out = out, interval = 0.05 })
          io.write(tostring(task), "|", err.kind, "|", tostring(err.field), "|", err.message, "\n")
        end
        client:close()
      ]]):format(KEY, emu.url, dir .. "/fifo.mp4", dir .. "/cat.mp4")
      local out, _, code = helper.capture("timeout 20 " .. q(helper.lua) .. " -e " .. q(script) .. " 2>&1")
      assert.equal(0, code, out)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(2, #lines, out)
      assert.equal("nil|io|out|out: cannot write " .. dir .. "/fifo.mp4: " .. dir
        .. "/fifo.mp4 is not a regular file (a FIFO, a device or a socket); nothing was sent", lines[1])
      assert.equal("nil|io|out|out: cannot write " .. dir .. "/cat.mp4: " .. dir
        .. "/cat.mp4.part is not a regular file (a FIFO, a device or a socket); nothing was sent", lines[2])
      assert.same({}, emu:requests())
    end)

    it("start returns the same error, and step sends nothing", function()
      local dir = helper.tmpdir()
      local client = new_client()
      local job, err = client:start(CAT, { out = dir .. "/missing/cat.mp4", interval = 0.05 })
      assert.is_nil(job)
      assert.equal("io", err.kind)
      assert.equal("out", err.field)
      assert.truthy(err.message:find(dir .. "/missing does not exist", 1, true), err.message)
      client:step(0.2)
      client:close()
      assert.same({}, emu:requests())
    end)

    it("an out that can be written is not touched before the download, and no probe stays", function()
      local dir = helper.tmpdir()
      local client = new_client()
      local task = assert(client:generate(CAT, { out = dir .. "/cat.mp4", interval = 0.05 }))
      client:close()
      assert.equal(dir .. "/cat.mp4", task.path)
      assert.equal(SAMPLE, helper.read_video(task.path))
      assert.same({ "cat.mp4", "cat.mp4.json" }, listing(dir))
      assert.equal(1, creates(emu))
    end)

    it("when the folder goes while the task is polled, the error names the command that fetches the video", function()
      local dir = helper.tmpdir()
      local out = dir .. "/gone/cat.mp4"
      assert(helper.execute("mkdir " .. q(dir .. "/gone")))
      emu:config { queued = 0.3, processing = 0.3 }
      local client = new_client()
      local removed
      local task, err = client:generate(CAT, { out = out, interval = 0.05, on_progress = function(ev)
        if ev.type == "status" and not removed then -- the create's answer: the task is paid for
          removed = assert(helper.execute("rm -r " .. q(dir .. "/gone")))
        end
      end })
      client:close()
      assert.is_true(removed)
      assert.is_nil(task)
      assert.equal("io", err.kind, tostring(err))
      assert.is_string(err.id)
      assert.equal("completed", err.task.status)
      assert.equal(1, creates(emu))
      local command = require("starvideos.errors").command() .. " download " .. err.id .. " " .. out
      assert.truthy(err.message:find("task " .. err.id .. " is completed: `" .. command .. "` fetches its video", 1,
        true), err.message)
      -- and that command does
      assert(helper.execute("mkdir " .. q(dir .. "/gone")))
      local r = cli(emu, { "download", err.id, out })
      assert.equal(0, r.code, r.err)
      assert.equal(SAMPLE, helper.read_video(out))
      assert.equal(1, creates(emu))
    end)

    it("quotes a path with spaces in that command", function()
      local dir = helper.tmpdir()
      local out = dir .. "/my videos/cat's.mp4"
      assert(helper.execute("mkdir " .. q(dir .. "/my videos")))
      local client = new_client()
      local _, err = client:generate(CAT, { out = out, interval = 0.05, on_progress = function(ev)
        if ev.type == "status" then os.execute("rm -rf " .. q(dir .. "/my videos")) end
      end })
      client:close()
      assert.equal("io", err.kind, tostring(err))
      assert.truthy(err.message:find("starvideos download " .. err.id .. " " .. q(out) .. "`", 1, true), err.message)
    end)
  end)

  describe("on the command line", function()
    it("generate --out in a missing folder: exit 2 (refused before anything was sent), the path and reason on "
      .. "stderr", function()
      local dir = helper.tmpdir()
      local out = dir .. "/missing/cat.mp4"
      local r = cli(emu, with(CAT_ARGS, "--out", out))
      assert.equal(2, r.code, r.err)
      assert.equal("starvideos generate: --out: cannot write " .. out .. ": the folder " .. dir
        .. "/missing does not exist; nothing was sent\n", r.err)
      assert.same({}, emu:requests())
      r = cli(emu, with(CAT_ARGS, "--out", out, "--json"))
      assert.equal(2, r.code, r.err)
      local doc = assert(cjson.decode(r.out), r.out)
      assert.equal("io", doc.error.kind)
      assert.equal("out", doc.error.field)
      assert.same({}, emu:requests())
    end)

    it("generate --out in a folder its user may not write: exit 2, nothing sent", function()
      local dir = helper.tmpdir()
      assert(helper.execute("mkdir " .. q(dir .. "/ro") .. " && chmod 555 " .. q(dir .. "/ro")))
      local out = dir .. "/ro/cat.mp4"
      -- root writes through any mode: run the command as nobody then
      local prefix = is_root() and "runuser -u nobody --" or nil
      if prefix and not helper.execute("command -v runuser >/dev/null") then pending("runuser is missing") return end
      local r = cli(emu, with(CAT_ARGS, "--out", out), prefix)
      assert.equal(2, r.code, r.err)
      assert.truthy(r.err:find("out: cannot write " .. out .. ": the folder " .. dir
        .. "/ro is not writable (Permission denied); nothing was sent", 1, true), r.err)
      assert.same({}, emu:requests())
      assert.same({}, listing(dir .. "/ro"))
    end)

    it("generate --out in a folder even root may not write: exit 2, nothing sent", function()
      local dir, why = unwritable_folder()
      if not dir then pending(why) return end
      local r = cli(emu, with(CAT_ARGS, "--out", dir .. "/cat.mp4"))
      assert.equal(2, r.code, r.err)
      assert.truthy(r.err:find("cannot write " .. dir .. "/cat.mp4: the folder " .. dir .. " is not writable", 1,
        true), r.err)
      assert.same({}, emu:requests())
    end)
  end)

  -- examples/embed/host.c: `host [options] BASE_URL OUT` starts one job with
  -- client:start(params, { out = OUT }) from the static library.
  describe("in a C host (build/libstarvideos.a) #hosts", function()
    it("start with an out in a missing folder fails at once and sends nothing", function()
      local built, ok = helper.capture(helper.UNINSTRUMENTED .. "make --no-print-directory -C " .. q(helper.root)
        .. " static embed-host 2>&1")
      assert.is_true(ok, built)
      local dir = helper.tmpdir()
      local out = dir .. "/missing/cat.mp4"
      local text, hok, code = helper.capture(helper.UNINSTRUMENTED .. "STARVIDEOS_API_KEY=" .. q(KEY) .. " "
        .. q(helper.root .. "/build/embed/host") .. " --no-package --timeout 20 " .. q(emu.url) .. " " .. q(out)
        .. " 2>&1")
      assert.is_nil(hok, text)
      assert.equal(1, code, text)
      assert.truthy(text:find("\nresult failed ", 1, true) or text:find("^result failed "), text)
      assert.truthy(text:find("\nframes 0\n", 1, true), text)
      assert.same({}, emu:requests())
      assert.same({}, listing(dir))
    end)
  end)
end)
