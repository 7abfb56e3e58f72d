-- The transport cases (spec/support/transport_cases.lua) run on one transport
-- against the same hostile servers: libcurl's, in a Lua process of its own
-- (spec/support/case_run.lua; spec/curl/transport_cases_spec.lua), or nginx's, in an
-- nginx worker (spec/support/ngx_probe.lua; spec/hosts/transport_cases_nginx_spec.lua).
-- The nginx half is pending, with the reason, where nginx or its lua module is missing.
--
--   require "spec.support.transport_run" ("libcurl" | "nginx", busted)
--
-- busted: the spec file's describe, it, setup, teardown, pending and assert (busted
-- gives them to spec files, not to the modules they require).

local cjson = require "cjson.safe"
local http = require "socket.http"
local ltn12 = require "ltn12"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local cases = require "spec.support.transport_cases"
local core = require "starvideos.core"
local options = require "starvideos.config"

local q, str_format = helper.shell_quote, string.format

local function get(url)
  local body, code = http.request(url)
  assert(code == 200, str_format("GET %s: %s %s", url, tostring(code), tostring(body)))
  return body
end

local dead_port = helper.refusing_port -- (bound, never listening: no server of a spec beside it takes it)

-- strace -e trace=<what> of a process started by cmd (prefix), or attached to pid
local function strace_prefix(what, log)
  return str_format("strace -f -qq -e trace=%s -o %s ", what, q(log))
end

local TRANSPORTS = {
  {
    name = "libcurl", kind = "curl",
    missing = function() end,
    start = function() return {} end,
    run = function(_, case, args, dir, n)
      local inp, out = str_format("%s/case-%d.in.json", dir, n), str_format("%s/case-%d.out.json", dir, n)
      helper.write_file(inp, assert(cjson.encode { case = case.name, args = args }))
      local trace = case.trace and str_format("%s/case-%d.strace", dir, n)
      local cmd = str_format("%s%s %s %s %s 2>&1", trace and strace_prefix(case.trace, trace) or "", q(helper.lua),
        q(nginx_run.ROOT .. "/spec/support/case_run.lua"), q(inp), q(out))
      local said = helper.capture(cmd)
      local text = helper.read_file(out) or ""
      local o = assert(cjson.decode(text), "the case's process said: " .. tostring(said))
      if trace then o.trace = helper.read_file(trace) end
      return o
    end,
  },
  {
    name = "nginx", kind = "ngx",
    missing = function() return nginx_run.missing { "nginx", "strace" } end,
    start = function(dir) return nginx_run.start(dir) end,
    run = function(ngx, case, args, dir, n)
      local st, trace
      if case.trace then
        trace = str_format("%s/case-%d.strace", dir, n)
        st = helper.spawn(strace_prefix(case.trace, trace) .. "-p " .. ngx.pid .. " 2>" .. q(trace .. ".err"))
        helper.sleep(1) -- attached to every thread of the worker, the pool's too
      end
      local body = assert(cjson.encode { case = case.name, args = args })
      local chunks = {}
      local _, code = http.request { url = "http://127.0.0.1:" .. ngx.port .. "/probe", method = "POST",
        headers = { ["content-type"] = "application/json", ["content-length"] = #body },
        source = ltn12.source.string(body), sink = ltn12.sink.table(chunks) }
      local text = table.concat(chunks)
      assert(code == 200, "the probe answered " .. tostring(code) .. ": " .. text)
      local o = assert(cjson.decode(text), text)
      if st then
        helper.sleep(0.3)
        helper.execute(str_format("kill -INT %d 2>/dev/null", st.pid))
        st:close()
        o.trace = helper.read_file(trace)
      end
      return o
    end,
  },
}

return function(name, busted)
  local describe, it, setup, teardown, pending, assert =
    busted.describe, busted.it, busted.setup, busted.teardown, busted.pending, busted.assert
  local tp
  for _, t in ipairs(TRANSPORTS) do if t.name == name then tp = t end end
  describe("the transport cases on " .. tp.name, function()
    local why = tp.missing()
    if why then
      it("need nginx with its lua module and strace", function() pending(why) end)
      return
    end
    local env, dir, srv, n = nil, nil, nil, 0

    setup(function()
      dir = helper.tmpdir()
      env = { hs = helper.hostile(), hs2 = helper.hostile(), helper = helper, assert = assert, json = helper.json,
        encode = cjson.encode, get = get, q = q, core = core, dead_port = dead_port,
        default_connections = options.DEFAULTS.max_connections }
      function env.name(stem)
        n = n + 1
        return str_format("%s/%s-%d", dir, stem, n)
      end
      srv = tp.start(dir)
    end)

    teardown(function()
      if srv and srv.stop then srv.stop() end
      if env then env.hs:stop(); env.hs2:stop() end
      helper.cleanup()
    end)

    for _, case in ipairs(cases.cases) do
      it(case.name, function()
        local args = case.prepare(env)
        n = n + 1
        local o = tp.run(srv, case, args, dir, n)
        assert.is_nil(o.raised, "the case raised in the transport's process: " .. tostring(o.raised))
        if o.transport then assert.equal(tp.kind, o.transport, "the call did not go through " .. tp.name) end
        case.check(o, args, env)
        if case.promise then -- (docs/matrix.md: a script's call, or a handler's inside nginx; case.places: more)
          local places = { tp.name == "nginx" and "nginx" or "lua" }
          for _, p in ipairs(case.places or {}) do places[#places + 1] = p end
          require("spec.support.matrix").record(case.promise, places, case.name)
        end
      end)
    end

    if tp.name == "nginx" then
      it("the worker logged no Lua error", function()
        local text = helper.read_file(dir .. "/error.log") or ""
        for _, bad in ipairs { "runtime error", "entry thread aborted", "[alert]", "[crit]", "[emerg]" } do
          assert.is_nil(text:find(bad, 1, true), bad .. " in the error log:\n" .. text:sub(-3000))
        end
      end)
    end
  end)
end
