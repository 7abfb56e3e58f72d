-- The studio (examples/studio/) run as `make studio` runs it, for the specs that drive it
-- (spec/hosts/studio_spec.lua in a browser, spec/hosts/studio_guard_spec.lua over HTTP, studio_fair_spec.lua in two):
-- tools/studio.sh against an emulator, and the requests a browser makes.
local nginx_run = require "spec.support.nginx_run"
local helper = require "spec.helper"
local socket = require "socket"
local cjson = require "cjson.safe"

local q, str_format = helper.shell_quote, string.format
local ROOT = nginx_run.ROOT

local M = {}

local PLAYWRIGHT = ROOT .. "/spec/npm/node_modules/playwright-core/package.json"

-- What the browser's specs need and this host has not, or nil.
function M.missing()
  if not helper.exists("/usr/bin/chromium") then return "chromium is not installed (apt-get install chromium)" end
  if not helper.execute("command -v node >/dev/null 2>&1") then return "node (Debian: nodejs) is not installed" end
  if not helper.exists(PLAYWRIGHT) then return "playwright-core is not installed in spec/npm (make npm-deps)" end
end

-- The command line of studio_browser.js (or script, another of spec/hosts/support/'s) given o.
local function node(o, script)
  return str_format("%sPLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 node %s %s 2>&1", helper.UNINSTRUMENTED,
    q(ROOT .. "/spec/hosts/support/" .. (script or "studio_browser.js")), q(cjson.encode(o)))
end

-- Script (of spec/hosts/support/) given o, started: its process, what it prints in .pipe, as it prints it.
function M.spawn(o, script)
  return helper.spawn(node(o, script))
end

-- One phase of studio_browser.js (or script, another of spec/hosts/support/'s): what it printed, decoded.
function M.browser(o, script)
  local out = helper.capture(node(o, script))
  local r = cjson.decode(out:match("([^\n]+)\n?$") or "")
  assert(type(r) == "table", "the browser said:\n" .. out)
  assert(r.failure == nil, "the browser failed: " .. tostring(r.failure))
  return r
end

-- tools/studio.sh's command line against emu in dir, on port, its output to log; more: settings of the
-- studio's environment in place of these.
local function command(dir, port, emu, more, log)
  local env = { STARVIDEOS_BASE_URL = emu.url, STARVIDEOS_API_KEY = emu.key, STUDIO_DIR = dir .. "/studio",
    STUDIO_PORT = tostring(port), STUDIO_INTERVAL = "1", STUDIO_PRICES = "videos=0.40,videos_fast=0.25",
    STUDIO_TENANT_LIMIT = "2/60" }
  for k, v in pairs(more or {}) do env[k] = v end
  local vars = {}
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. q(v) end
  return str_format("sh -c %s", q(str_format("cd %s && exec %s%s sh tools/studio.sh >%s 2>&1", q(ROOT),
    helper.UNINSTRUMENTED, table.concat(vars, " "), q(log))))
end

-- tools/studio.sh run to its end, for settings that stop it (more as M.start's): its exit status, and what it
-- printed.  A studio that starts all the same is stopped after 60 s (its status then 124).
function M.refused(dir, port, emu, more)
  assert(helper.execute("mkdir -p " .. q(dir)))
  local log = dir .. "/studio-refused.out"
  local _, _, status = helper.capture("timeout 60 " .. command(dir, port, emu, more, log))
  return status, helper.read_file(log) or ""
end

-- tools/studio.sh against emu in dir, on port: the process, once it printed the URL, the URL, and the
-- seconds that took.  more: settings of the studio's environment in place of these.
function M.start(dir, port, emu, more)
  local log = dir .. "/studio.out"
  os.remove(log) -- (a restart's: the URL an earlier start printed there is not this one's)
  local t0 = socket.gettime()
  local proc = helper.spawn(command(dir, port, emu, more, log))
  local url = "http://127.0.0.1:" .. port .. "/"
  local up = helper.wait_until(function() return (helper.read_file(log) or ""):find(url, 1, true) ~= nil end, 30)
  assert(up, "the studio did not start:\n" .. (helper.read_file(log) or "") ..
    (helper.read_file(dir .. "/studio/error.log") or ""))
  return proc, url, socket.gettime() - t0
end

-- Stops tools/studio.sh as Ctrl-C does (its trap stops nginx): whether nginx let go of the port.
function M.stop(proc, port)
  helper.execute(str_format("kill -INT %d 2>/dev/null", proc.pid))
  proc:close()
  return helper.wait_until(function() return not nginx_run.listening(port) end, 10)
end

-- A page's token for the browser of cookie (studio_tenant's value), as the page's meta tag holds it.
function M.page_token(url, cookie)
  local page = helper.capture(str_format("curl -s -H %s %s", q("Cookie: studio_tenant=" .. cookie), q(url)))
  return (assert(page:match('name="studio%-token" content="([^"]+)"'), page))
end

-- A new browser: the cookie (studio_tenant's value) its first page was given.
function M.tenant(url)
  local head = helper.capture(str_format("curl -s -o /dev/null -D - %s", q(url)))
  return (assert(head:match("[Ss]et%-[Cc]ookie: studio_tenant=([^;\r\n]+)"), head))
end

-- A create POSTed as the page does, for the browser of cookie: the answer's status and body.
function M.post(url, cookie, body)
  local out = helper.capture(str_format("curl -s -w '\n%%{http_code}' -H %s -H %s -H %s -d %s %s",
    q("Cookie: studio_tenant=" .. cookie), q("X-Studio-Token: " .. M.page_token(url, cookie)),
    q("Content-Type: application/json"), q(body), q(url .. "tasks")))
  local text, status = out:match("^(.*)\n(%d+)$")
  return tonumber(status), text
end

return M
