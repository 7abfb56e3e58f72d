-- A string as one word of a POSIX shell command line, in the commands printed for a
-- person to copy; a command's success, a program on PATH, a command run (in nginx without
-- holding its worker).  It needs nothing: the emulator loads it without the C core.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local M = {}

-- s bare when it is plain (letters, digits and . / _ + , : @ -; no ~, which a
-- shell expands at a word's start), else in single quotes, each ' as '\''.
function M.word(s)
  if s:find("^[%w%./_+,:@%-]+$") then return s end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- A URL as the flag of a printed command: `--FLAG URL` when it holds no password; else `--FLAG "$VAR"` (which
-- the shell expands) and a note saying that VAR holds it, the URL shown without its password (as every output hides
-- it): pasted, the command both keeps the secret out of sight and works.  what: "the store", "the proxy".
function M.secret_flag(flag, var, what, url)
  url = tostring(url)
  local shown, hidden = url:gsub("^(%a[%w+.-]*://[^/@:]*):[^/@]*@", "%1:***@", 1)
  if hidden == 0 then return "--" .. flag .. " " .. M.word(url) end
  return "--" .. flag .. ' "$' .. var .. '"', string.format(" (with %s set to %s's URL %s and its password, which "
    .. "is never printed: `export %s=\"$(cat FILE)\"` reads it from a file only you can read)", var, what, shown, var)
end

-- The length of the UTF-8 character at s's byte i, or nil when the bytes there make none (a stray continuation byte,
-- an overlong form, a surrogate, past U+10FFFF, cut short).
local function char_at(s, i)
  local c = s:byte(i)
  if c < 0x80 then return 1 end
  local more = c >= 0xC2 and c < 0xE0 and 1 or c >= 0xE0 and c < 0xF0 and 2 or c >= 0xF0 and c < 0xF5 and 3 or nil
  if not more then return nil end
  local lo, hi = 0x80, 0xBF -- (the second byte's range: narrower after E0, ED, F0 and F4)
  if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F elseif c == 0xF0 then lo = 0x90
  elseif c == 0xF4 then hi = 0x8F end
  for j = i + 1, i + more do
    local d = s:byte(j)
    if not d or d < (j == i + 1 and lo or 0x80) or d > (j == i + 1 and hi or 0xBF) then return nil end
  end
  return more + 1
end

local function hex(c) return string.format("\\x%02x", c:byte()) end

-- s as text that leaves the library: each byte that makes no UTF-8 character written \xNN (JSON stays valid),
-- and with `controls` each control character too (C0, DEL, C1: an ESC or a BEL never reaches a terminal), as
-- the service's request ids are shown; the rest as it is.
function M.visible(s, controls)
  if not s:find(controls and "[%z\1-\31\127-\255]" or "[\128-\255]") then return s end
  local parts, i = {}, 1
  while i <= #s do
    local n = char_at(s, i)
    local c = s:byte(i)
    local bad = not n or controls and (c < 32 or c == 127 or c == 0xC2 and n == 2 and s:byte(i + 1) < 0xA0)
    parts[#parts + 1] = bad and s:sub(i, i + (n or 1) - 1):gsub(".", hex) or s:sub(i, i + n - 1)
    i = i + (n or 1)
  end
  return table.concat(parts)
end

-- Whether the command exits 0, on every Lua: os.execute gives a status number on 5.1 and LuaJIT (256 for a
-- command that failed: a true value), true or nil from 5.2 on.
function M.ok(command)
  local r = os.execute(command)
  return r == true or r == 0
end

-- Whether the program is on PATH (in a job, asked as M.run_ok asks: M.offload's).
function M.has(program)
  local command = "command -v " .. program .. " >/dev/null 2>&1"
  if M.offload then return (select(2, M.offload(command))) end
  return M.ok(command)
end

-- The shell command run to its end, here: what it wrote (stdout and stderr together), and whether it exited 0.
-- The status is the shell's own words after the output, not the pipe's close: inside nginx, the worker's SIGCHLD
-- handler (waitpid of any child) may reap the shell first, and the close then says it failed.
function M.popen_ok(command)
  local p = io.popen(M.saying(command))
  if not p then return "cannot run it", false end
  local out = p:read("*a") or ""
  p:close()
  return M.said(out)
end

-- The command that runs command, its stderr with its stdout, and says its status after them (popen_ok's; a job's
-- helper thread's too, verb_job.lua).
function M.saying(command) return "{ " .. command .. "\n} 2>&1; printf '\\n%d' $?" end

-- What such a command wrote (out: all of it): its own words, and whether it exited 0.
function M.said(out)
  local words, status = out:match("^(.*)\n(%d+)$")
  return words or out, status == "0"
end

-- The shell command run to its end, here: what it wrote (stdout and stderr together).
function M.popen(command) return (M.popen_ok(command)) end

-- nginx's phases whose handler may wait on the thread pool.
local YIELDS = { rewrite = true, server_rewrite = true, access = true, content = true, timer = true }

-- Where a job's coroutine runs a command (verb_job.lua sets it while one runs: a helper thread runs it, the job
-- yielding meanwhile), or nil.
M.offload = nil

-- The shell command run to its end: what it wrote (stdout and stderr together), and whether it exited 0.  In
-- nginx's request handlers and timers in its thread pool `starvideos` (`thread_pool starvideos threads=4;`, as
-- downloads' commits use), so that the worker goes on serving while it runs; in a job of again, remix, continue or
-- film, M.offload's; without that pool, and elsewhere, here (io.popen waits for it).
function M.run_ok(command)
  local ngx = rawget(_G, "ngx")
  local phase = type(ngx) == "table" and type(ngx.get_phase) == "function" and ngx.get_phase()
  if YIELDS[phase] and ngx.run_worker_thread then
    local ok, said, exited = ngx.run_worker_thread("starvideos", "starvideos.shell", "popen_ok", command)
    if ok then return said, exited end
    ngx.log(ngx.WARN, "starvideos: a command runs in the worker (", tostring(said), "): add `thread_pool starvideos "
      .. "threads=4;` to the main context of nginx.conf")
  end
  if M.offload then return M.offload(command) end
  return M.popen_ok(command)
end

-- The shell command run to its end as run_ok runs it: what it wrote.
function M.run(command) return (M.run_ok(command)) end

return M
