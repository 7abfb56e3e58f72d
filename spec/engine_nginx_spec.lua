-- One engine per key inside nginx: clients made by different requests of one
-- worker share the key's budget (requests_per_second), each moving its own
-- exchanges on its request's cosockets.  20 requests, each with a client of its
-- own, generate at once; the emulator's log (its clock per request) shows the
-- polls of the busiest second within 2 x requests_per_second (the bucket's one
-- second of burst, then the rate).  Pending where nginx or its lua module is missing.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

local q = helper.shell_quote
local str_format = string.format

local KEY = "k-engine-ngx"
local RATE = 5
local CLIENTS = 20
local ROOT = nginx_run.ROOT

local why = nginx_run.missing { "nginx", "curl" }
if why then
  describe("one engine per key inside nginx", function()
    it("needs nginx with its lua module", function() pending(why) end)
  end)
  return
end

-- Each GET /gen?i=N makes a client (the key's engine is shared in the worker)
-- and generates one video into dir/N.mp4; the answer is "ok <id>" or the error.
local function nginx_conf(dir, port, emu_url)
  local lines = {
    "load_module " .. nginx_run.MODULES .. "ndk_http_module.so;",
    "load_module " .. nginx_run.MODULES .. "ngx_http_lua_module.so;",
    "worker_processes 1;", "thread_pool starvideos threads=2;", "daemon off;",
    str_format("error_log %s/error.log info;", dir), str_format("pid %s/nginx.pid;", dir),
    "events { worker_connections 1024; }",
    "http {", "    access_log off;",
    str_format("    client_body_temp_path %s/body;", dir),
    "    lua_package_path \"$prefix/lua/?.lua;$prefix/lua/?/init.lua;;\";",
    "    lua_package_cpath \"$prefix/build/luajit/?.so;;\";",
    str_format("    server { listen 127.0.0.1:%d;", port),
    "        location = /gen { content_by_lua_block {",
    "            local starvideos = require \"starvideos\"",
    str_format("            local client = starvideos.new { api_key = %q, base_url = %q, requests_per_second = %d }",
      KEY, emu_url, RATE),
    "            local i = tonumber(ngx.var.arg_i)",
    "            local task, err = client:generate({ model = \"videos\", prompt = \"cat \" .. i, duration = 5 },",
    str_format("              { out = %q .. i .. \".mp4\", interval = 0, timeout = 120 })", dir .. "/"),
    "            client:close()",
    "            ngx.say(task and (\"ok \" .. task.id) or (\"err \" .. tostring(err)))",
    "        } }",
    "    }", "}", "" }
  local text = table.concat(lines, "\n")
  local uid = helper.capture("id -u")
  if uid:match("^0%s*$") then text = "user root;\n" .. text end
  return text
end

describe("one engine per key inside nginx", function()
  local emu, dir, port, ngx

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.5, processing = 2.5 }
    dir = helper.tmpdir()
    port = helper.free_ports(1)[1]
    local f = assert(io.open(dir .. "/nginx.conf", "wb"))
    f:write(nginx_conf(dir, port, emu.url))
    f:close()
    ngx = nginx_run.launch { dir = dir, ports = { port } }
  end)

  teardown(function()
    if ngx then ngx.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("keeps the polls of 20 clients (one per request) within 2 x requests_per_second in any second", function()
    emu:clear()
    -- 20 requests at once, each in a curl of its own
    local cmd = {}
    for i = 1, CLIENTS do
      cmd[#cmd + 1] = str_format("curl -s -m 120 'http://127.0.0.1:%d/gen?i=%d' > %s &", port, i,
        q(dir .. "/out." .. i))
    end
    cmd[#cmd + 1] = "wait"
    assert(helper.execute(helper.UNINSTRUMENTED .. "sh -c " .. q(table.concat(cmd, "\n"))))
    for i = 1, CLIENTS do
      local said = helper.read_file(dir .. "/out." .. i) or ""
      assert.truthy(said:find("^ok "), "request " .. i .. ": " .. said .. (helper.read_file(dir .. "/error.log") or ""))
      assert.equal(helper.file_size(ROOT .. "/lua/starvideos/emulator/sample.mp4"), helper.file_size(dir .. "/" .. i
        .. ".mp4"))
    end
    local polls = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" and r.path:find("^/v1/result/") then polls[#polls + 1] = r.at end
    end
    table.sort(polls)
    assert.is_true(#polls >= CLIENTS, "only " .. #polls .. " polls")
    -- the busiest second: the most polls in any window [t, t + 1)
    local most, j = 0, 1
    for i = 1, #polls do
      while polls[i] - polls[j] >= 1 do j = j + 1 end
      if i - j + 1 > most then most = i - j + 1 end
    end
    assert.is_true(most <= 2 * RATE, str_format("%d polls in the busiest second (requests_per_second = %d, %d "
      .. "clients); %d polls in all over %.1f s", most, RATE, CLIENTS, #polls, polls[#polls] - polls[1]))
  end)
end)
