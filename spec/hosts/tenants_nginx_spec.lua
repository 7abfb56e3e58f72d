-- Tenants inside nginx (docs/tenants-and-costs.md), with real processes: two nginx hosts (2 workers each) on one
-- redis-server (`store`), `lua_shared_dict starvideos`, a client per create in a timer (an app's request), the
-- emulator as the service.
--
-- The fair share: tenant A asks 200 creates (100 on each host) under requests_per_second = 5, then, once A's creates
-- are queued, tenant B asks 5 (3 and 2): B's creates all reach the service within 6 s of asking (the emulator's clock
-- of each POST against the moment B asked; 2 s at a fair half of 5 a second, and room for a loaded machine: CI saw 3.61
-- s once), not behind A's queue (some 38 s), while A's still go out. tenant_limit = {count = 7, per = 60} under a race:
-- 20 creates of tenant C at once, 10 on each host, on a second key (its own emulator): exactly 7 reach the service, 13
-- are refused rate_limited (field tenant_limit), and tenant D beside it is not held back by C's count.  One host
-- without Redis (the shared dict counts it): 12 creates of tenant E at once over its 2 workers, tenant_limit 5: exactly
-- 5 sent.  A full dict (24k, tenant_limit 3/60): 300 tenants fill it (those past its room refused io, none sent
-- uncounted), then its last slots are taken (/fill): tenant F, counted before, still gets its second and third creates
-- out and its fourth refused by its count (the lock and its count rewritten in their slots); a new tenant H is refused
-- (io, naming the dict); no create sent twice.
--
-- Prints how long B's creates took and A's creates meanwhile.  Pending where nginx, its lua module or
-- redis-server is missing, and under any VM but lua5.4 (nginx's LuaJIT runs it).

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("tenants inside nginx", { "nginx", "curl" }) then return end
local helper = require "spec.helper"
local redis_run = require("spec.support.places").fixture("redis")
local why = redis_run.missing()
if why then
  describe("tenants inside nginx", function() pending(why) end)
  return
end

local socket = require "socket"
local http = require "socket.http"
local cjson = require "cjson.safe"

local str_format = string.format
local KEY, RATE = "k-tenants", 5

-- One host's nginx.conf: GET /ask?tenant=T&from=I&n=N starts N creates (prompts "T I" ...; with &each=1 each of
-- its own tenant "TI"), each in a timer with a client of its own (`new`: the expression making it; /limited:
-- `limited`'s, on the second key), answering at once; each outcome goes to the dict `outcomes` ("ok", or the
-- error's kind and field, and with &why=1 ": " and its message), which GET /outcomes lists.  dict: the size of
-- lua_shared_dict starvideos (1m).
local function host_conf(dir, port, new, limited, dict)
  local lines = nginx_run.conf_head(dir, 2)
  local function asker(name, make)
    for _, l in ipairs {
      str_format("        location = /%s { content_by_lua_block {", name),
      "            local tenant, from, n = ngx.var.arg_tenant, tonumber(ngx.var.arg_from), tonumber(ngx.var.arg_n)",
      "            local each, why = ngx.var.arg_each, ngx.var.arg_why",
      "            for i = from, from + n - 1 do",
      "                assert(ngx.timer.at(0, function(premature)",
      "                    if premature then return end",
      "                    local client = " .. make,
      "                    local task, err = client:create({ model = \"videos\", prompt = tenant .. \" \" .. i,",
      "                      duration = 5 }, { tenant = each and tenant .. i or tenant })",
      "                    client:close()",
      "                    ngx.shared.outcomes:set(tenant .. \" \" .. i, task and \"ok\" or",
      "                      tostring(err.kind) .. \" \" .. tostring(err.field)",
      "                      .. (why and \": \" .. tostring(err.message) or \"\"))",
      "                end))",
      "            end",
      "            ngx.say(\"started \", n)",
      "        } }",
    } do lines[#lines + 1] = l end
  end
  lines[#lines + 1] = "    lua_shared_dict starvideos " .. (dict or "1m") .. ";"
  lines[#lines + 1] = "    lua_shared_dict outcomes 1m;"
  lines[#lines + 1] = str_format("    server { listen 127.0.0.1:%d reuseport;", port)
  asker("ask", new)
  if limited then asker("limited", limited) end
  for _, l in ipairs {
    -- /fill: the dict filled up with entries of its own (no expiry), from the largest to the smallest size, until
    -- it takes none more: every size of slot the library asks for is then taken
    "        location = /fill { content_by_lua_block {",
    "            local d, n = ngx.shared.starvideos, 0",
    "            for _, size in ipairs { 2000, 1000, 500, 250, 120, 60, 30, 10, 1 } do",
    "                while d:safe_set(\"fill:\" .. n, string.rep(\"x\", size)) do n = n + 1 end",
    "            end",
    "            ngx.say(\"filled \", n)",
    "        } }",
    "        location = /outcomes { content_by_lua_block {",
    "            local o = ngx.shared.outcomes",
    "            for _, k in ipairs(o:get_keys(0)) do ngx.say(k, \"=\", o:get(k)) end",
    "        } }",
    "    }", "}", "" } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

local function client_expr(emu_url, rate, more)
  return str_format("require(\"starvideos\").new { api_key = %q, base_url = %q, requests_per_second = %d%s }", KEY,
    emu_url, rate, more)
end

local function get(port, path)
  local body, code = http.request(str_format("http://127.0.0.1:%d/%s", port, path))
  assert(code == 200 and body and body:find("^started"), path .. ": " .. tostring(code) .. " " .. tostring(body))
end

-- The hosts' outcomes: key ("T i") -> what it ended with.
local function outcomes(ports)
  local all = {}
  for _, port in ipairs(ports) do
    for k, v in (http.request(str_format("http://127.0.0.1:%d/outcomes", port)) or ""):gmatch("([^\n=]+)=([^\n]+)") do
      all[k] = v
    end
  end
  return all
end

-- The creates the emulator received: {prompt -> the emulator's clock when it came}.
local function creates(emu)
  local at = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then
      local body = cjson.decode(r.body or "") or {}
      at[body.prompt or "?"] = r.at
    end
  end
  return at
end

describe("tenants inside nginx", function()
  local srv, emu, emu2, hosts, dir
  lazy_setup(function()
    dir = helper.tmpdir()
    srv = redis_run.start()
    emu = helper.emulator { key = KEY, queued = 30, processing = 30 }
    emu2 = helper.emulator { key = KEY, queued = 30, processing = 30 }
    local store = str_format(", store = %q", srv.url)
    hosts = {}
    for h = 1, 2 do
      local hdir = dir .. "/host" .. h
      assert(helper.execute("mkdir -p " .. helper.shell_quote(hdir)))
      hosts[h] = nginx_run.serve(hdir, function(p)
        return host_conf(hdir, p, client_expr(emu.url, RATE, store), client_expr(emu2.url, 100, store
          .. ", tenant_limit = { count = 7, per = 60 }"))
      end)
    end
  end)
  lazy_teardown(function()
    for _, h in ipairs(hosts or {}) do h.stop() end
    if srv then srv.stop() end
    if emu then emu:stop() end
    if emu2 then emu2:stop() end
    helper.cleanup()
  end)

  it("two hosts on one Redis: B's 5 creates go out within 6 s of asking while A has 200 queued", function()
    get(hosts[1].port, "ask?tenant=A&from=1&n=100")
    get(hosts[2].port, "ask?tenant=A&from=101&n=100")
    assert(helper.wait_until(function()
      local n = 0
      for p in pairs(creates(emu)) do if p:find("^A ") then n = n + 1 end end
      return n >= 10
    end, 20), "A's creates did not start")
    socket.sleep(1) -- (A's queue is long now: 5 a second, 200 asked)
    local asked = socket.gettime()
    get(hosts[1].port, "ask?tenant=B&from=1&n=3")
    get(hosts[2].port, "ask?tenant=B&from=4&n=2")
    local at
    assert(helper.wait_until(function()
      at = creates(emu)
      for i = 1, 5 do if not at["B " .. i] then return false end end
      return true
    end, 30), "B's creates did not all go out in 30 s")
    local last, a_meanwhile = 0, 0
    for i = 1, 5 do last = math.max(last, at["B " .. i] - asked) end
    for p, t in pairs(at) do
      if p:find("^A ") and t >= asked and t <= asked + last then a_meanwhile = a_meanwhile + 1 end
    end
    local a_all = 0
    for p in pairs(at) do if p:find("^A ") then a_all = a_all + 1 end end
    io.stderr:write(str_format("tenants_nginx_spec: B's 5 creates out %.2f s after asking; A's creates meanwhile %d, "
      .. "A's so far %d of 200\n", last, a_meanwhile, a_all))
    assert.is_true(last <= 6, str_format("B's last create went out %.2f s after asking", last))
    assert.is_true(a_all < 200, "A's creates all went out first")
  end)

  it("tenant_limit holds exactly across both hosts under a race: 7 of C's 20 creates sent, 13 refused", function()
    get(hosts[1].port, "limited?tenant=C&from=1&n=10")
    get(hosts[2].port, "limited?tenant=C&from=11&n=10")
    get(hosts[1].port, "limited?tenant=D&from=1&n=3")
    local out
    assert(helper.wait_until(function()
      out = outcomes { hosts[1].port, hosts[2].port }
      for i = 1, 20 do if not out["C " .. i] then return false end end
      for i = 1, 3 do if not out["D " .. i] then return false end end
      return true
    end, 30), "the creates did not all end")
    local ok, refused, other = 0, 0, {}
    for i = 1, 20 do
      local v = out["C " .. i]
      if v == "ok" then ok = ok + 1
      elseif v == "rate_limited tenant_limit" then refused = refused + 1
      else other[#other + 1] = v end
    end
    assert.same({ 7, 13, {} }, { ok, refused, other })
    for i = 1, 3 do assert.equal("ok", out["D " .. i]) end
    local sent = 0
    for p in pairs(creates(emu2)) do if p:find("^C ") then sent = sent + 1 end end
    assert.equal(7, sent)
  end)
end)

describe("tenants inside nginx without Redis", function()
  it("tenant_limit holds across the workers of one host in its shared dict: 5 of E's 12 creates sent", function()
    local dir = helper.tmpdir()
    local emu = helper.emulator { key = KEY, queued = 30, processing = 30 }
    local host = nginx_run.serve(dir, function(p)
      return host_conf(dir, p, client_expr(emu.url, 100, ", tenant_limit = { count = 5, per = 60 }"))
    end)
    finally(function() host.stop(); emu:stop(); helper.cleanup() end)
    for _ = 1, 4 do get(host.port, "ask?tenant=E&from=" .. (_ - 1) * 3 + 1 .. "&n=3") end -- (over both workers)
    local out
    assert(helper.wait_until(function()
      out = outcomes { host.port }
      for i = 1, 12 do if not out["E " .. i] then return false end end
      return true
    end, 30), "the creates did not all end")
    local ok, refused = 0, 0
    for i = 1, 12 do
      if out["E " .. i] == "ok" then ok = ok + 1 elseif out["E " .. i] == "rate_limited tenant_limit" then
        refused = refused + 1 end
    end
    assert.same({ 5, 7 }, { ok, refused })
    assert.equal(5, emu:creates())
  end)

  it("a full dict evicts none and counts on the tenants it holds: F's creates go out until its count, 300 tenants "
    .. "fill it (those past its room refused, io, never sent uncounted), a new tenant refused naming the dict",
    function()
    local dir = helper.tmpdir()
    local emu = helper.emulator { key = KEY, queued = 30, processing = 30 }
    local host = nginx_run.serve(dir, function(p)
      return host_conf(dir, p, client_expr(emu.url, 1000, ", tenant_limit = { count = 3, per = 60 }"), nil, "24k")
    end)
    finally(function() host.stop(); emu:stop(); helper.cleanup() end)
    local function ended(names)
      local out
      assert(helper.wait_until(function()
        out = outcomes { host.port }
        for _, k in ipairs(names) do if not out[k] then return false end end
        return true
      end, 60), "the creates did not all end")
      return out
    end
    get(host.port, "ask?tenant=F&why=1&from=1&n=1")
    assert.equal("ok", ended({ "F 1" })["F 1"])
    local names = {}
    for i = 1, 300 do names[i] = "G " .. i end
    for from = 1, 300, 50 do get(host.port, "ask?tenant=G&each=1&from=" .. from .. "&n=50") end
    local out, tally = ended(names), {}
    for _, k in ipairs(names) do tally[out[k]] = (tally[out[k]] or 0) + 1 end
    -- (what the G creates' budget kept expires within 2 s; then the dict is filled to the last slot)
    socket.sleep(2.5)
    local filled = http.request(str_format("http://127.0.0.1:%d/fill", host.port))
    local after = {}
    for i = 2, 4 do
      get(host.port, "ask?tenant=F&why=1&from=" .. i .. "&n=1")
      after["F " .. i] = ended({ "F " .. i })["F " .. i]
    end
    get(host.port, "ask?tenant=H&why=1&from=1&n=1")
    after["H 1"] = ended({ "H 1" })["H 1"]
    local sent, twice = {}, {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "POST" and r.path:find("^/v1/") then
        local p = (cjson.decode(r.body or "") or {}).prompt or "?"
        if sent[p] then twice[#twice + 1] = p end
        sent[p] = true
      end
    end
    local g_sent = 0
    for p in pairs(sent) do if p:find("^G ") then g_sent = g_sent + 1 end end
    io.stderr:write(str_format("tenants_nginx_spec: a 24k dict, 300 tenants: %s; %d sent; %s; then %s\n",
      cjson.encode(tally), g_sent, (tostring(filled):gsub("\n", "")), cjson.encode(after)))
    assert.truthy((tally["io tenant_limit"] or 0) > 0, "the 300 tenants did not fill the dict")
    assert.equal(tally.ok or 0, g_sent, "every G create sent was counted")
    for v in pairs(tally) do assert.truthy(v == "ok" or v == "io create_limit" or v == "io tenant_limit", v) end
    -- F, counted before: its creates go out in the full dict until its count (3 in 60 s) refuses the fourth
    assert.same({ "ok", "ok" }, { after["F 2"], after["F 3"] })
    assert.truthy(after["F 4"]:find("^rate_limited tenant_limit"), after["F 4"])
    -- H, new: no room for its count: refused, the dict named, nothing sent
    assert.truthy(after["H 1"]:find("^io tenant_limit: nginx's lua_shared_dict starvideos: it is full"), after["H 1"])
    assert.same({ true, true, true }, { sent["F 1"], sent["F 2"], sent["F 3"] })
    assert.same({ nil, nil }, { sent["F 4"], sent["H 1"] })
    assert.same({}, twice, "a create sent twice")
  end)
end)
