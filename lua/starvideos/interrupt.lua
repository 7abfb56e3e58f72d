-- Ctrl-C in a blocking call (docs/reference.md#ctrl-c): under the standalone `lua`, SIGINT raises
-- the string "interrupted!" from wherever the call was (loop.lua, a callback).  The loop's drive
-- catches it and raises instead one error (kind `timeout`, `interrupted = true`) saying how to go
-- on, after cancelling the loop's unfinished jobs as a client's close does: each ends
-- `cancelled` (a batch counts it so, not failed), a create already sent stays pending in the
-- ledger, a download's recorded .part stays for the next run (its record written before the
-- error: a command ends the process on it).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
-- (it requires what the stop needs only then: the command line loads it before the C core, which may be missing)
local type, pairs, ipairs, pcall, error, require = type, pairs, ipairs, pcall, error, require
local string_format, table_concat, math_min = string.format, table.concat, math.min

local M = {}

local FLUSH = 2 -- seconds a ledger's records are waited for after Ctrl-C (a store's: its own timeouts)

-- True for what lua.c's SIGINT hook raises.
function M.is(e) return type(e) == "string" and e:find("interrupted!", 1, true) ~= nil end

local function through(ok, ...)
  if not ok and M.is((...)) then error((...), 0) end
  return ok, ...
end

-- pcall for a catch that goes on after a failure: the same, except that Ctrl-C goes through.  lua.c raises
-- its interrupt once, from wherever the VM is: a pcall that kept going would swallow it, and the command
-- would never stop (a batch's watcher write, ten times a second, did).
function M.pcall(fn, ...) return through(pcall(fn, ...)) end

-- The ledger the jobs wrote to, as the command line's flag: "--journal PATH", "--store URL" (one with a password
-- as the variable that holds it, and the note that says so: shell.secret_flag), or nil.
local function ledger_of(jobs)
  local shell = require "starvideos.shell"
  for _, job in ipairs(jobs) do
    local ledger, cfg = job.ledger, job.cfg
    if type(ledger) == "table" and type(ledger.path) == "string" then return "--journal " .. shell.word(ledger.path) end
    if cfg and cfg.store then
      local url = type(cfg.store) == "table" and cfg.store.url or cfg.store
      local words, note = shell.secret_flag("store", "STARVIDEOS_STORE", "the store", url)
      if note then return words, note end
      local ok, where = pcall(require("starvideos.store_option").where, cfg.store)
      if ok then return "--store " .. shell.word(where) end
    end
  end
end

-- The flags that make the pasted command do what the call did, and their note ("" without one): the call's polling
-- interval (else the client's, when not the default), the client's base URL (when not the default) and its proxy
-- (one with a password as the variable that holds it, shell.secret_flag).
local function carried(jobs)
  local shell, config = require "starvideos.shell", require "starvideos.config"
  local job = jobs[1]
  local cfg = job and job.cfg or {}
  local words, note = {}, nil
  local interval = job and job.fixed or cfg.interval ~= config.DEFAULTS.interval and cfg.interval
  if type(interval) == "number" then words[#words + 1] = string_format("--interval %.14g", interval) end
  if type(cfg.base_url) == "string" and cfg.base_url ~= config.DEFAULT_BASE_URL then
    words[#words + 1] = "--base-url " .. shell.word(cfg.base_url)
  end
  if type(cfg.proxy) == "string" then
    words[#words + 1], note = shell.secret_flag("proxy", "STARVIDEOS_PROXY", "the proxy", cfg.proxy)
  end
  return words[1] and " " .. table_concat(words, " ") or "", note or ""
end

-- The command that fetches a created job's video, as a person pastes it: `starvideos wait ID --out PATH` with the
-- job's own id and file (without a file, `starvideos wait ID`: the task, its video_url) and the flags carried.
local function fetch(job, flags)
  local shell_word = require("starvideos.shell").word
  return "`starvideos wait " .. shell_word(job.id) .. (type(job.out) == "string" and " --out " .. shell_word(job.out)
    or "") .. flags .. "`"
end

-- How to go on after the jobs were cancelled (created: those with a task).
local function next_step(jobs, created)
  local at, stored = ledger_of(jobs)
  local flags, note = carried(jobs)
  if at then
    return string_format("`starvideos resume %s%s` fetches every task created, or run the same call again: it"
      .. " follows them and pays for nothing created before%s%s", at, flags, stored or "", note)
  end
  if #created == 0 then return "no task was created: run it again" end
  if #created == 1 then
    return "no ledger recorded the task, which goes on at the service: " .. fetch(created[1], flags) .. " fetches it"
      .. note
  end
  local shown = {}
  for i = 1, math_min(#created, 5) do shown[i] = fetch(created[i], flags) end
  return string_format("no ledger recorded the tasks, which go on at the service: %s fetch them%s%s",
    table_concat(shown, ", "), #created > 5 and string_format(" (and %d more)", #created - 5) or "", note)
end

-- The jobs cancelled (those whose ledger records them only, with `recorded`), and their ledgers flushed: what the
-- cancels recorded (a download's .part) is written before the error, which may end the process.
local function cancel(jobs, recorded)
  local flushed = {}
  for _, job in ipairs(jobs) do
    local l = job.ledger
    if not recorded or type(l) == "table" and l.records then
      pcall(job.cancel, job, true) -- (a job cut mid-step may fail to cancel cleanly: the others still are)
    end
    if type(l) == "table" and l.flush and not flushed[l] then flushed[l] = true; pcall(l.flush, l, FLUSH) end
  end
end

-- A command's Ctrl-C (cli/init.lua: its sleep, the live line's, is no library call's drive): the jobs whose ledger
-- records a .part cancelled so; the others left as they stand, their .part too (`wait ID --out PATH`, the
-- command printed, goes on from it).
function M.keep(loop) cancel(loop:jobs_of(nil), true) end

-- The loop's unfinished jobs cancelled, and the error the interrupted call raises.
function M.stop(loop)
  local jobs = loop:jobs_of(nil)
  local created = {}
  for _, job in ipairs(jobs) do
    if job.id then created[#created + 1] = job end
  end
  loop.sweep = {} -- (what each batch tells of its jobs cancelled: told once after, not once a job: batch.lua)
  cancel(jobs)
  local told = loop.sweep
  loop.sweep = nil
  for _, tell in pairs(told) do pcall(tell) end
  local single = #jobs == 1 and jobs[1] or nil
  local errors = require "starvideos.errors"
  return errors.new_error("timeout", errors.hint(string_format("interrupted (Ctrl-C): %d job%s cancelled, %d with a "
    .. "task created (paid for: it goes on at the service); %s", #jobs, #jobs == 1 and "" or "s", #created,
    next_step(jobs, created))), { interrupted = true, id = single and single.id, task = single and single.task,
    transient = true })
end

-- The drive (fn(...)) under the watch: an interrupt raises M.stop's error; any other error goes on as it was.
function M.guard(loop, fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return end
  if M.is(e) then error(M.stop(loop), 0) end
  error(e, 0)
end

return M
