-- keep inside nginx: each worker starts `client:keep` from a timer made in
-- init_worker_by_lua* (docs/openresty.md's block, "## Keep from
-- init_worker_by_lua", its lease and polling made short: lease 1, interval
-- 0.2); a worker killed -9 in the middle of a
-- generate has its task finished by a live worker's keep (the survivor's or
-- the replacement's): the file arrives whole, byte for byte the emulator's video, the emulator saw
-- exactly one create for it, and `starvideos pending --journal` lists nothing.
-- With 2 workers and with 1 (then only the replacement can take it over).
-- Prints the takeover time (kill -> claimed, kill -> file complete).  Pending
-- where nginx or its lua module is missing.

local socket = require "socket"
local cjson = require "cjson.safe"
local helper = require "spec.helper"
local U = helper.UNINSTRUMENTED -- before a program not built with the sanitizers (make check)
local nginx_run = require "spec.support.nginx_run"

local gettime = socket.gettime
local q = helper.shell_quote
local str_format = string.format

local KEY = "k-keep-ngx"
local ROOT = nginx_run.ROOT
local SAMPLE = require("starvideos.emulator.files").video(5)

local why = nginx_run.missing { "nginx", "curl" }
if why then
  describe("keep inside nginx", function()
    it("needs nginx with its lua module", function() pending(why) end)
  end)
  return
end

-- docs/openresty.md's init_worker_by_lua_block ("## Keep from
-- init_worker_by_lua"), its paths filled in, its keep's lease and interval
-- short (the defaults: a look every 5 s, polls learned, else every 30 s).
local function keep_block(dir)
  local doc = assert(helper.read_file(ROOT .. "/docs/openresty.md"))
  local at = assert(doc:find("\n## Keep from init_worker_by_lua\n", 1, true),
    "docs/openresty.md has no ## Keep from init_worker_by_lua")
  local block = assert(doc:match("```nginx\n(.-)\n```", at), "no nginx block under ## Keep from init_worker_by_lua")
  local n1, n2
  block, n1 = block:gsub("/path/to/tasks%.jsonl", (dir:gsub("%%", "%%%%")) .. "/tasks.jsonl")
  block, n2 = block:gsub("/path/to/videos", (dir:gsub("%%", "%%%%")))
  local n3
  block, n3 = block:gsub("client:keep { dir = ", "client:keep { lease = 1, interval = 0.2, dir = ")
  assert(n1 == 1 and n2 == 1 and n3 == 1, "docs/openresty.md's block names no /path/to/tasks.jsonl or /path/to/videos"
    .. " or has no client:keep { dir = ...")
  return block
end

-- `workers` workers, each keeping the journal from the docs' timer; GET
-- /gen?i=N writes the serving worker's pid to dir/gen.pid, then generates into dir/N.mp4.
local function nginx_conf(dir, port, emu_url, workers)
  local journal = dir .. "/tasks.jsonl"
  local new = str_format("starvideos.new { api_key = %q, base_url = %q, journal = %q }", KEY, emu_url, journal)
  local lines = {
    "load_module " .. nginx_run.MODULES .. "ndk_http_module.so;",
    "load_module " .. nginx_run.MODULES .. "ngx_http_lua_module.so;",
    "worker_processes " .. workers .. ";", "worker_shutdown_timeout 2s;", "thread_pool starvideos threads=2;",
    "daemon off;",
    str_format("error_log %s/error.log info;", dir), str_format("pid %s/nginx.pid;", dir),
    "env STARVIDEOS_API_KEY;", "env STARVIDEOS_BASE_URL;", "events { worker_connections 1024; }",
    "http {", "    access_log off;",
    str_format("    client_body_temp_path %s/body;", dir),
    "    lua_package_path \"" .. helper.lua_path("$prefix") .. ";;\";",
    "    lua_package_cpath \"$prefix/build/luajit/?.so;;\";",
    keep_block(dir),
    str_format("    server { listen 127.0.0.1:%d;", port),
    "        location = /gen { content_by_lua_block {",
    "            local starvideos = require \"starvideos\"",
    str_format("            local f = assert(io.open(%q, \"w\"))", dir .. "/gen.pid"),
    "            f:write(ngx.worker.pid(), \"\\n\")",
    "            f:close()",
    "            local client = " .. new,
    "            local i = tonumber(ngx.var.arg_i)",
    "            local task, err = client:generate({ model = \"videos\", prompt = \"kept \" .. i, duration = 5 },",
    str_format("              { out = %q .. i .. \".mp4\", interval = 0.2, timeout = 120 })", dir .. "/"),
    "            client:close()",
    "            ngx.say(task and (\"ok \" .. task.id) or (\"err \" .. tostring(err)))",
    "        } }",
    "    }", "}", "" }
  return table.concat(lines, "\n")
end

local function records(path, event)
  local out = {}
  for line in (helper.read_file(path) or ""):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    if type(r) == "table" and r.event == event then out[#out + 1] = r end
  end
  return out
end

for _, workers in ipairs { 2, 1 } do describe("keep inside nginx, " .. workers .. " worker(s)", function()
  local emu, dir, port, stop

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.5, processing = 5 }
    dir = helper.tmpdir()
    local run = nginx_run.serve(dir, function(p) return nginx_conf(dir, p, emu.url, workers) end, nil,
      { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url })
    port, stop = run.port, run.stop
  end)

  teardown(function()
    if stop then stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  for _, stage in ipairs { "poll", "download" } do
    it("finishes the task of a worker killed -9 mid-" .. stage .. " (in a live worker's keep)", function()
      emu:reset()
      local i = stage == "poll" and 1 or 2
      local journal, out = dir .. "/tasks.jsonl", dir .. "/" .. i .. ".mp4"
      os.remove(dir .. "/gen.pid")
      if stage == "download" then emu:fault { method = "GET", path = "/videos/", delay = 3, count = 1 } end
      local curl = helper.spawn(str_format(U .. "curl -s -m 60 'http://127.0.0.1:%d/gen?i=%d'", port, i))
      local rec
      assert(helper.wait_until(function()
        for _, r in ipairs(records(journal, "created")) do if r.prompt == "kept " .. i then rec = r end end
        return rec ~= nil
      end, 15), "no created record: " .. (helper.read_file(dir .. "/error.log") or ""))
      local wanted = stage == "poll" and "/v1/result/" .. rec.id or "/videos/" .. rec.id .. ".mp4"
      assert(helper.wait_until(function()
        for _, r in ipairs(emu:requests()) do if r.path:find(wanted, 1, true) then return true end end
      end, 15), "the worker never reached " .. wanted)
      helper.sleep(math.random() * 0.5)
      local pid = assert(tonumber(helper.read_file(dir .. "/gen.pid")))
      assert(helper.execute("kill -9 " .. pid))
      local killed = gettime()
      curl.pipe:read("*a")
      curl:close()
      local claimed
      assert(helper.wait_until(function()
        if not claimed and #records(journal, "claim") >= i then claimed = gettime() end
        return helper.read_file(out) ~= nil
      end, 30), "the file never came: " .. (helper.read_file(dir .. "/error.log") or ""))
      local done = gettime()
      -- the claim names the keeper's lease, which holds its worker's pid while it keeps
      local claim
      for _, r in ipairs(records(journal, "claim")) do if r.id == rec.id then claim = r end end
      local keeper = tonumber(helper.read_file(journal .. ".owners/" .. claim.owner) or "")
      assert.is_number(keeper)
      assert.are_not.equal(pid, keeper)
      io.stderr:write(str_format("\nkeep in nginx (%d workers), worker %d killed -9 mid-%s: claimed %.2f s after "
        .. "the kill by worker %d, file complete %.2f s after it\n", workers, pid, stage,
        (claimed or done) - killed, keeper, done - killed))
      assert.equal(SAMPLE, helper.read_video(out))
      local n = 0
      for _, r in ipairs(emu:requests()) do
        if r.method == "POST" and (r.body or ""):find("kept " .. i, 1, true) then n = n + 1 end
      end
      assert.equal(1, n)
      local claims = 0
      for _, r in ipairs(records(journal, "claim")) do if r.id == rec.id then claims = claims + 1 end end
      assert.equal(1, claims)
      local text = helper.capture("env LUA_PATH=" .. q(helper.lua_path(ROOT) .. ";;")
        .. " LUA_CPATH=" .. q(helper.cpath .. ";;") .. " " .. q(helper.lua) .. " " .. q(ROOT .. "/bin/starvideos")
        .. " pending --journal " .. q(journal) .. " --json")
      assert.same({}, cjson.decode(text))
    end)
  end
end) end
