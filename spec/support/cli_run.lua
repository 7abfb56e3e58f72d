-- The command line as a child process, for the specs of spec/tools/cli*_spec.lua: a run's
-- output and exit code (the API key never in either), a command it printed run as a person
-- would paste it, the command in the background, and `session`: a describe block's emulator
-- with the runs made against it.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local assert = require "luassert"

local M = {}
local BIN = helper.root .. "/bin/starvideos"
local KEY = "sk-cli-spec-7f3a9c2e" -- distinctive: no output may ever contain it
M.KEY, M.BIN = KEY, BIN
M.SAMPLE = require("starvideos.emulator.files").video(5)

local q = helper.shell_quote

-- The command line as installed on the PATH (what a person who ran `luarocks install`
-- types: `starvideos`, so each command it prints starts with `starvideos`): DIR/bin/starvideos,
-- a copy of the launcher beside DIR/lua and DIR/build (links to the checkout's), DIR/bin
-- first on the PATH of every run.  spec/tools/hints_spec.lua runs it from the checkout.
local ROOT = helper.root:sub(1, 1) == "/" and helper.root or (os.getenv("PWD") .. "/" .. helper.root):gsub("/%.$", "")
local installed
local function install()
  if installed and helper.exists(installed .. "/bin/starvideos") then return installed end
  installed = helper.tmpdir()
  assert(helper.execute("mkdir " .. q(installed .. "/bin") .. " && cp " .. q(BIN) .. " " .. q(installed .. "/bin/")
    .. " && ln -s " .. q(ROOT .. "/lua") .. " " .. q(installed .. "/lua")
    .. " && ln -s " .. q(ROOT .. "/rocks") .. " " .. q(installed .. "/rocks")
    .. " && ln -s " .. q(ROOT .. "/build") .. " " .. q(installed .. "/build")))
  return installed
end
M.ROOT, M.install = ROOT, install

local function lines(text)
  local list = {}
  for l in (text or ""):gmatch("[^\n]+") do list[#list + 1] = l end
  return list
end

-- cmd (a shell command line) run with stdin from opts.stdin (text) or
-- /dev/null: { out =, err =, code = }, the API key in neither.
local function run_command(cmd, opts)
  local errfile = os.tmpname()
  local infile
  if opts.stdin then
    infile = os.tmpname()
    local f = assert(io.open(infile, "w"))
    f:write(opts.stdin)
    f:close()
  end
  if opts.tty then
    cmd = "script -qec " .. q(cmd) .. " /dev/null"
  end
  cmd = cmd .. " <" .. q(infile or "/dev/null") .. " 2>" .. q(errfile)
  local out, _, code = helper.capture(cmd)
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  if infile then os.remove(infile) end
  -- key hygiene, for every single run
  assert(not out:find(KEY, 1, true), "the API key appeared on stdout of: " .. cmd)
  assert(not err:find(KEY, 1, true), "the API key appeared on stderr of: " .. cmd)
  return { out = out, err = err, code = code }
end

-- "env -u STARVIDEOS_API_KEY -u STARVIDEOS_BASE_URL K=V ...": the caller's
-- STARVIDEOS_* cleared, then env's variables set.
local function env_prefix(env)
  local parts = { "env", "-u", "STARVIDEOS_API_KEY", "-u", "STARVIDEOS_BASE_URL",
    "PATH=" .. q(install() .. "/bin") .. ':"$PATH"' }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  return table.concat(parts, " ")
end

-- run(args, env, opts) -> { out =, err =, code = }.  env: variables to set (the
-- caller's STARVIDEOS_* are always cleared first); opts.stdin: text for stdin;
-- opts.tty: run under script(1), so that stdout is a terminal (err is then merged);
-- opts.lua: the interpreter (default lua5.4).
local function run(args, env, opts)
  opts = opts or {}
  local parts = { env_prefix(env) }
  parts[#parts + 1] = opts.lua or q(helper.lua) -- the VM running the specs, unless a spec picks one
  parts[#parts + 1] = q(install() .. "/bin/starvideos")
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return run_command(table.concat(parts, " "), opts)
end

-- A command the command line printed for a person ("starvideos wait ..."),
-- run by a shell as they would paste it, `starvideos` on the PATH being
-- bin/starvideos under the VM of the specs: what run() returns.
local function run_printed(command, env)
  local dir = helper.tmpdir()
  helper.write_file(dir .. "/starvideos", "#!/bin/sh\nexec " .. q(helper.lua) .. " " .. q(BIN) .. ' "$@"\n')
  assert(helper.execute("chmod +x " .. q(dir .. "/starvideos")))
  return run_command(env_prefix(env) .. " PATH=" .. q(dir) .. ':"$PATH" sh -c ' .. q(command), {})
end

local function until_true(f)
  if not helper.wait_until(f, 10) then error("gave up waiting") end
end

-- The shell command inner run in the background by sh, its pid written first (inner's `echo $$ >DIR/pid`), its
-- stdout, stderr and exit code in dir's out, err and rc: its pid and :stop(signal), which sends the signal (none:
-- nil) and returns what run() does once it ended.
local function spawned(dir, inner)
  assert(os.execute("(sh -c " .. q(inner) .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " </dev/null; echo $? >" .. q(dir .. "/rc") .. ") &"))
  until_true(function() return (helper.read_file(dir .. "/pid") or ""):match("%d+\n") end)
  local proc = { pid = helper.read_file(dir .. "/pid"):match("%d+"), dir = dir } -- (dir: its out, err, rc)
  function proc.stop(_, signal)
    if signal then os.execute("kill -" .. signal .. " " .. proc.pid) end
    until_true(function() return (helper.read_file(dir .. "/rc") or ""):match("%d") end)
    return { code = tonumber(helper.read_file(dir .. "/rc"):match("%d+")), out = helper.read_file(dir .. "/out"),
      err = helper.read_file(dir .. "/err") }
  end
  return proc
end

-- The command line in the background: spawned's process, and :err_line(text), the line of its stderr with text,
-- once it is there (a killed command's line comes from its watcher, after it ended).
local function background(args, env, lua)
  local dir = helper.tmpdir()
  local parts = { env_prefix(env) }
  parts[#parts + 1] = q(lua or helper.lua)
  parts[#parts + 1] = q(install() .. "/bin/starvideos")
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local proc = spawned(dir, "echo $$ >" .. q(dir .. "/pid") .. "; exec " .. table.concat(parts, " "))
  function proc.err_line(_, text)
    local found
    until_true(function()
      for l in (helper.read_file(dir .. "/err") or ""):gmatch("[^\n]+") do
        if l:find(text, 1, true) then found = l end
      end
      return found
    end)
    return found
  end
  return proc
end

-- A new list: list's words, then the words given after it (args with more flags).
local function with(list, ...)
  local l = {}
  for _, a in ipairs(list) do l[#l + 1] = a end
  for i = 1, select("#", ...) do l[#l + 1] = select(i, ...) end
  return l
end

-- A Lua script src (dir/script.lua) run by the specs' VM in the background against emu (its key and URL in
-- STARVIDEOS_API_KEY and STARVIDEOS_BASE_URL; vars: more variables): spawned's process, and :stop() sending
-- SIGINT (Ctrl-C).
function M.script(dir, src, emu, vars)
  local path = dir .. "/script.lua"
  if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then
    -- (Lua 5.1's interpreter prints "(error object is not a string)" for any error table, the library's too:
    -- docs/reference.md says so; the error's own words, as a script's pcall and tostring give them)
    src = "local ok, e = pcall(function()\n" .. src .. "\nend)\n"
      .. "if not ok then io.stderr:write('lua5.1: ', tostring(e), '\\n') os.exit(1) end\n"
  end
  helper.write_file(path, src)
  local env = "LUA_PATH=" .. q(helper.lua_path(helper.root) .. ";;")
    .. " LUA_CPATH=" .. q(helper.cpath .. ";;") .. " STARVIDEOS_API_KEY=" .. q(emu.key)
    .. " STARVIDEOS_BASE_URL=" .. q(emu.url)
  for k, v in pairs(vars or {}) do env = env .. " " .. k .. "=" .. q(v) end
  local proc = spawned(dir, "echo $$ >" .. q(dir .. "/pid") .. "; exec env " .. env .. " " .. q(helper.lua) .. " "
    .. q(path))
  local stop = proc.stop
  function proc.stop() return stop(proc, "INT") end
  return proc
end

-- A script's generate_all of 3 videos (the emulator emu answering queued for 2 s) into out (a pattern: %04d) by a
-- client of ledger (Lua source: starvideos.new's options), interrupted (Ctrl-C) once the 3 are created (vars:
-- M.script's): it exited 1 having paid 3 creates, saying so; the go-on command it named (`starvideos resume
-- --ledger ...`, asserted there).
function M.interrupted_batch(dir, emu, ledger, out, vars)
  emu:config { queued = 2 }
  local before = emu:creates()
  local proc = M.script(dir, string.format([[
local client = require("starvideos").new %s
local list = {}
for i = 1, 3 do list[i] = { model = "videos", prompt = "an interrupted fox " .. i, duration = 5 } end
client:generate_all(list, { out = %q, interval = 0.1, on_progress = function(ev)
  if ev.type == "batch" then io.stdout:write("created ", ev.created, "\n") io.stdout:flush() end
end })
]], ledger, out), emu, vars)
  until_true(function() return (helper.read_file(dir .. "/out") or ""):find("created 3", 1, true) end)
  local r = proc:stop()
  emu:config { queued = 0.2 }
  assert.equals(1, r.code, r.err)
  assert.equals(before + 3, emu:creates())
  assert.matches("interrupted (Ctrl-C): 3 jobs cancelled, 3 with a task created", lines(r.err)[1], 1, true)
  return assert(r.err:match("`([^`]*starvideos resume %-%-%l+ [^`]+)`"), r.err)
end

local function has_command(name)
  local p = io.popen("command -v " .. name)
  local found = p:read("*a")
  p:close()
  return found ~= ""
end

local function has_script() return has_command("script") end

M.lines, M.run, M.run_printed, M.until_true, M.background = lines, run, run_printed, until_true, background
M.has_command, M.has_script, M.with = has_command, has_script, with

-- Called inside a describe block: its emulator (keep(emu) when it starts) and, against it,
-- env(extra) (the variables of a run), posts() (the POSTs it got), create(extra_args, e) (a task
-- made through the command line: its decoded JSON) and completed(extra_args) (one waited for).
function M.session(keep)
  local emu

  local function env(extra)
    local e = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local function posts()
    local list = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "POST" then list[#list + 1] = r end
    end
    return list
  end

  -- A task created through the command line: its decoded JSON.
  local function create(extra_args, e)
    local args = { "create", "--model", "videos", "--prompt", "a cat surfing", "--duration", "5", "--json" }
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    local r = run(args, e or env())
    assert.equals(0, r.code, r.err)
    local task = assert(cjson.decode(r.out), r.out)
    assert.is_string(task.id)
    return task
  end

  local function completed(extra_args)
    local task = create(extra_args)
    local r = run({ "wait", task.id, "--interval", "0.1" }, env())
    assert.equals(0, r.code, r.err)
    return task
  end

  shared_emulator({ key = KEY, queued = 0.2, processing = 0.2 }, function(e) emu = e; keep(e) end)

  return env, posts, create, completed
end

return M
