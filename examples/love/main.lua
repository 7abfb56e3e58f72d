-- luacheck: globals love
-- A LÖVE 11 game that generates a video in the background: it starts one job
-- with client:start and calls client:step(0) once a frame, which does the
-- network work that is ready and returns at once (the download itself runs on
-- a thread of the library's), so the frames keep coming while the task is
-- created, polled and its video downloaded.  It draws the job's status and the
-- download's progress, and a message for each kind of error (messages.lua).
--
--   make luajit
--   STARVIDEOS_BASE_URL=http://127.0.0.1:PORT STARVIDEOS_API_KEY=KEY \
--     love examples/love [--interval S] [--journal PATH] [--tasks N] [--remix] [--film N] [--blocking]
--       [OUT.mp4] [PROMPT]
--
-- The arguments:
--   OUT.mp4            where the video goes (default starvideos-love.mp4, in
--                      the folder love was started from)
--   PROMPT             the prompt (default: a lighthouse in a storm)
--   --interval S       seconds between polls (default: the library's learned
--                      schedule, 30 s until it has learned; the emulator's tasks
--                      take 3 s, so give 0.5 against it)
--   --journal PATH     the client's journal (docs/batch.md)
--   --tasks N          N jobs at once (default 1): the others to OUT-2.mp4 ...
--                      OUT-N.mp4; the game shows the first, ends when all are done
--   --remix            once the video is saved, a remix of it as a job
--                      (client:remix(id, params, {job = true}): its parent's
--                      SHA-256 taken off the frame) to OUT-remix.mp4 (after.lua)
--   --film N           then a film of N shots as a job, joined off the frame, to
--                      OUT-film.mp4 (--remix and --film need --journal: a
--                      parent is taken from the ledger)
--   --blocking         the remix and the film called the blocking way instead,
--                      each inside one frame (for comparison: the frames stop)
--
-- The environment:
--   STARVIDEOS_API_KEY, STARVIDEOS_BASE_URL  read by starvideos.new, as everywhere
--   STARVIDEOS_CHECKOUT  a checkout whose lua/ and build/luajit/ the library is
--                      loaded from (default: the checkout this game sits in;
--                      without either, package.path and package.cpath as they
--                      are: a LuaRocks tree for Lua 5.1, say).  LÖVE runs LuaJIT:
--                      the C modules must be the LuaJIT (5.1 ABI) build, and
--                      lua-cjson the 5.1 one (Debian: lua-cjson)
--   STARVIDEOS_LOVE_REPORT=PATH  when the job is done, write PATH ("key value"
--                      lines: the result, the message shown, the frame and
--                      step(0) times) and quit; a Lua error is reported there too
--   STARVIDEOS_LOVE_SCREENSHOT=PREFIX  save PREFIX-downloading.png a third of
--                      the way into the download and PREFIX-done.png at the end
-- Escape quits.

local messages = require "messages"
local After = require "after"

local FRAME = 1 / 60 -- the frame cap (vsync does it on a real display; Xvfb has none)
local STEP_LIMIT = 0.004

local starvideos, client, job, opts
local after -- what is made after the video (--remix, --film: after.lua), once it is saved
local others = {} -- the jobs after the first (--tasks)
local job_ended
local base_url
local failure -- { kind, headline, detail } once something went wrong
local saved -- the path, once the video is on the disk
local report_written, quit_next

-- timings, while the job runs: the frame starts and each step(0)
local frames, frames_downloading, last_frame = 0, 0, nil
local gap_max, gap_max_downloading = 0, 0
local steps = {}
local works = {} -- each step(0)'s own work: its CPU time, or its wall time when it blocked (Linux, LuaJIT's FFI)
local download_started, download_ended
local next_frame
local shot_downloading
local fonts -- made in love.load: fonts made in the first frame would make it a long one

---------------------------------------------------------------------------
-- finding the library

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The checkout to load the library from, or nil (the paths as they are).
local function checkout()
  local root = os.getenv("STARVIDEOS_CHECKOUT")
  if root and root ~= "" then
    if not file_exists(root .. "/lua/starvideos/init.lua") then
      return nil, "STARVIDEOS_CHECKOUT=" .. root .. " has no lua/starvideos/init.lua"
    end
    return root
  end
  local source = love.filesystem.getSource() -- this folder, as love was given it
  root = source:match("^(.-)/?examples/love/?$")
  if root then
    if root == "" then root = "." end
    if file_exists(root .. "/lua/starvideos/init.lua") then return root end
  end
  return nil
end

local function load_library()
  local root, why = checkout()
  if why then return nil, why end
  if root then
    messages.command = root .. "/bin/starvideos" -- what the quit line tells a player to run
    package.path = dofile(root .. "/tools/lua_dirs.lua")(root) .. package.path
    package.cpath = root .. "/build/luajit/?.so;" .. package.cpath
  end
  local ok, lib = pcall(require, "starvideos")
  if not ok then
    return nil, tostring(lib) .. "\n\nBuild the LuaJIT modules at the top of the checkout: "
      .. "make luajit"
  end
  return lib
end

---------------------------------------------------------------------------
-- arguments

local function parse_args(args)
  local o = { out = "starvideos-love.mp4", prompt = "A lighthouse in a storm at night, waves crashing" }
  local positional, i = {}, 1
  while i <= #args do
    local a = args[i]
    if a == "--interval" then
      local v = args[i + 1]
      o.interval = v and tonumber(v)
      if not o.interval or o.interval <= 0 then
        return nil, "--interval: expected seconds > 0, got " .. tostring(v)
      end
      i = i + 2
    elseif a == "--journal" or a == "--tasks" or a == "--film" then
      o[a:sub(3)] = args[i + 1]
      i = i + 2
    elseif a == "--remix" or a == "--blocking" then
      o[a:sub(3)] = true
      i = i + 1
    elseif a:sub(1, 2) == "--" then
      return nil, "unknown option " .. a
    else
      positional[#positional + 1] = a
      i = i + 1
    end
  end
  if #positional > 2 then return nil, "too many arguments: expected [OUT.mp4] [PROMPT]" end
  o.out = positional[1] or o.out
  if o.film then
    local n = tonumber(o.film)
    if not n or n < 1 or n % 1 ~= 0 then return nil, "--film: expected a number of shots >= 1, got " .. o.film end
    o.film = n
  end
  if (o.remix or o.film) and not o.journal then return nil, "--remix and --film need --journal PATH" end
  o.prompt = positional[2] or o.prompt
  local function env(name)
    local v = os.getenv(name)
    if v and v ~= "" then return v end
  end
  o.report, o.screenshot = env("STARVIDEOS_LOVE_REPORT"), env("STARVIDEOS_LOVE_SCREENSHOT")
  return o
end

-- The thread's CPU seconds, the times it gave up the CPU (blocked) and its seconds on a run queue, or nil: a
-- busy machine's scheduler holds a frame back without the step doing anything; a step that waits on the disk
-- blocks.  (As examples/embed/host.c's "work".)
local thread_usage
do
  local schedstat = io.open("/proc/thread-self/schedstat", "rb")
  local ok, ffi = pcall(require, "ffi")
  if ok and ffi.os == "Linux" and pcall(ffi.cdef, [[
    typedef struct { long sec, nsec; } sv_ts;
    typedef struct { long t[4]; long l[14]; } sv_rusage;
    int clock_gettime(int clock, sv_ts *ts);
    int getrusage(int who, sv_rusage *ru);]]) then
    local ts, ru = ffi.new("sv_ts"), ffi.new("sv_rusage")
    thread_usage = function() -- CLOCK_THREAD_CPUTIME_ID, RUSAGE_THREAD's ru_nvcsw
      if ffi.C.clock_gettime(3, ts) ~= 0 or ffi.C.getrusage(1, ru) ~= 0 then return nil end
      local waited = schedstat and schedstat:seek("set", 0) and (schedstat:read("*l") or ""):match("^%d+ (%d+)")
      return tonumber(ts.sec) + tonumber(ts.nsec) / 1e9, tonumber(ru.l[12]), (tonumber(waited) or 0) / 1e9
    end
  end
end

---------------------------------------------------------------------------
-- the report (STARVIDEOS_LOVE_REPORT)

local function one_line(v)
  return (tostring(v):gsub("[\r\n]+", " | "))
end

local function write_report(result)
  if not (opts and opts.report) or report_written then return end
  report_written = true
  local sorted = {}
  for k, v in ipairs(steps) do sorted[k] = v end
  table.sort(sorted)
  local n = #sorted
  local over = 0
  for _, v in ipairs(sorted) do if v > STEP_LIMIT then over = over + 1 end end
  local function ms(v) return v and string.format("%.3f", v * 1000) or "none" end
  local lines = {
    { "result", result },
    { "kind", failure and failure.kind or "none" },
    { "message", failure and failure.headline or "none" },
    { "detail", failure and failure.detail or "none" },
    { "state", job and job.state or "none" },
    { "status", job and job.status or "none" },
    { "task_id", job and job.id or "none" },
    { "path", saved or "none" },
    { "bytes", job and job.bytes or 0 },
    { "frames", frames },
    { "frames_downloading", frames_downloading },
    { "download_ms", ms(download_started and download_ended and download_ended - download_started) },
    { "steps", n },
    { "step_max_ms", ms(sorted[n]) },
    { "step_p99_ms", ms(sorted[math.max(1, math.ceil(n * 0.99))]) },
    { "step_p50_ms", ms(sorted[math.max(1, math.ceil(n * 0.5))]) },
    { "steps_over_4ms", over },
    { "step_work_max_ms", ms(works.max) },
    { "gap_max_ms", ms(gap_max) },
    { "gap_max_downloading_ms", ms(gap_max_downloading) },
    { "renderer", table.concat({ love.graphics.getRendererInfo() }, " ") },
  }
  local f, err = io.open(opts.report, "wb")
  if not f then
    io.stderr:write("cannot write the report: ", tostring(err), "\n")
    return
  end
  if after then after:report(lines) end
  for _, kv in ipairs(lines) do f:write(kv[1], " ", one_line(kv[2]), "\n") end
  f:close()
end

local function screenshot(suffix)
  if not opts.screenshot then return end
  local path = opts.screenshot .. "-" .. suffix .. ".png"
  love.graphics.captureScreenshot(function(image)
    local f = io.open(path, "wb")
    if f then
      f:write(image:encode("png"):getString())
      f:close()
    end
  end)
end

local function fail(kind, err)
  local headline, detail = messages.describe(err, { out = opts and opts.out, base_url = base_url,
    interval = opts and opts.interval })
  failure = { kind = kind, headline = headline, detail = detail }
end

---------------------------------------------------------------------------
-- LÖVE callbacks

function love.load(args)
  love.graphics.setBackgroundColor(0.08, 0.09, 0.14)
  fonts = { title = love.graphics.newFont(24), text = love.graphics.newFont(16), small = love.graphics.newFont(13) }
  local why
  opts, why = parse_args(args)
  if not opts then
    opts = { out = "?", report = os.getenv("STARVIDEOS_LOVE_REPORT") }
    failure = { kind = "usage", headline = "Bad arguments: " .. why,
      detail = "love examples/love [--interval S] [OUT.mp4] [PROMPT]" }
    return
  end
  if opts.report then
    -- a Lua error ends the run with a report, rather than LÖVE's error screen
    love.errorhandler = function(msg)
      failure = { kind = "lua", headline = "Lua error", detail = debug.traceback(tostring(msg), 2) }
      write_report("error")
      return nil
    end
  end
  starvideos, why = load_library()
  if not starvideos then
    failure = { kind = "load", headline = "The starvideos library did not load.", detail = why }
    return
  end
  local ok, c = pcall(starvideos.new, { journal = opts.journal })
  if not ok then
    failure = { kind = "options", headline = "The client could not be made.", detail = tostring(c) }
    return
  end
  client, base_url = c, c.base_url
  local err
  job, err = client:start({ model = "videos", prompt = opts.prompt, duration = 5 },
    { out = opts.out, interval = opts.interval })
  if not job then return fail(err.kind, err) end
  for i = 2, tonumber(opts.tasks) or 1 do
    others[#others + 1] = assert(client:start({ model = "videos", prompt = opts.prompt .. " " .. i, duration = 5 },
      { out = opts.out:gsub("%.mp4$", "") .. "-" .. i .. ".mp4", interval = opts.interval }))
  end
end

-- Whether the first job and the others are done (the first of the others that failed: its error shown).
local function all_done()
  for _, other in ipairs(others) do
    if not other.done then return false end
    if other.err and not failure then fail(other.err.kind, other.err) end
  end
  return job.done and (not after or after:done())
end

function love.update()
  local t = love.timer.getTime()
  if job and not all_done() then
    local downloading = job.state == "downloading"
    if last_frame then
      local gap = t - last_frame
      if gap > gap_max then gap_max = gap end
      if downloading and gap > gap_max_downloading then gap_max_downloading = gap end
    end
    last_frame = t
    frames = frames + 1
    if downloading then
      frames_downloading = frames_downloading + 1
      download_started = download_started or t
    end
    local c0, s0, q0, work
    if thread_usage then c0, s0, q0 = thread_usage() end
    local t0 = love.timer.getTime()
    client:step(0)
    steps[#steps + 1] = love.timer.getTime() - t0
    if c0 then
      local c1, s1, q1 = thread_usage()
      work = s1 ~= s0 and math.max(steps[#steps] - (q1 - q0), c1 - c0) or c1 - c0
      works.max = math.max(works.max or 0, work)
    end
    if job.state == "downloading" and not shot_downloading and job.total and (job.bytes or 0) > job.total / 3 then
      shot_downloading = true
      screenshot("downloading")
    end
    if job.done and not job_ended then
      job_ended, download_ended = true, download_started and love.timer.getTime()
      if job.err then fail(job.err.kind, job.err) else saved = job.path end
      if saved and (opts.remix or opts.film) then after = After.new(client, job, opts) end
    end
    if after and not after:done() then after:update(t, steps[#steps], work) end
  end
  if opts and opts.report and (not job or all_done()) then
    -- done: this frame draws the end (and takes its screenshot), the next quits
    if quit_next then
      write_report(failure and "failed" or "ok")
      love.event.quit()
    else
      quit_next = true
      screenshot("done")
    end
  end
end

local function mib(n)
  return string.format("%.1f MiB", (n or 0) / 1048576)
end

local function cap_frame_rate()
  local t = love.timer.getTime()
  next_frame = (next_frame or t) + FRAME
  if next_frame > t then
    love.timer.sleep(next_frame - t)
  else
    next_frame = t -- a late frame does not make the next ones short
  end
end

function love.draw()
  local g = love.graphics
  local w = g.getWidth()
  local now = love.timer.getTime()

  g.setColor(1, 1, 1)
  g.setFont(fonts.title)
  g.print("starvideos in LÖVE", 24, 18)

  -- a spinner: it turns only while frames come
  g.push()
  g.translate(w - 44, 36)
  g.rotate(now * 4)
  g.setColor(0.45, 0.75, 1)
  g.rectangle("fill", -12, -3, 24, 6)
  g.pop()

  g.setFont(fonts.text)
  local y = 70
  local function line(text, r, gr, b)
    g.setColor(r or 0.9, gr or 0.9, b or 0.9)
    g.printf(text, 24, y, w - 48)
    local _, wrapped = fonts.text:getWrap(text, w - 48)
    y = y + #wrapped * fonts.text:getHeight() + 6
  end

  if job then
    local state = messages.state_text(job)
    if job.done and failure then state = "Failed" end
    line(string.format("%s%s", state, job.status and " (task " .. job.status .. ")" or ""))
    line("Task: " .. (job.id or "not created yet"), 0.7, 0.7, 0.75)
    if job.bytes or job.state == "downloading" or saved then
      -- the progress bar: bytes against the size the server announced
      local bar_w = w - 48
      local frac = 0
      if saved then frac = 1 elseif job.total and job.total > 0 then frac = (job.bytes or 0) / job.total end
      g.setColor(0.25, 0.27, 0.35)
      g.rectangle("fill", 24, y, bar_w, 22)
      g.setColor(0.3, 0.8, 0.45)
      g.rectangle("fill", 24, y, bar_w * math.min(1, frac), 22)
      y = y + 30
      line(string.format("%s of %s (%d%%)", mib(job.bytes), job.total and mib(job.total) or "?",
        math.floor(frac * 100 + 0.5)), 0.8, 0.8, 0.85)
    end
  end
  if saved then line("Saved to " .. saved, 0.5, 0.95, 0.6) end
  local doing = after and after:status()
  if doing then line(doing, 0.8, 0.8, 0.95) end
  if failure then
    -- the message on a red panel as tall as its wrapped lines
    y = y + 8
    local _, a = fonts.text:getWrap(failure.headline, w - 48)
    local _, b = fonts.text:getWrap(failure.detail, w - 48)
    g.setColor(0.35, 0.08, 0.1)
    g.rectangle("fill", 14, y - 8, w - 28, (#a + #b) * fonts.text:getHeight() + 22, 6, 6)
    line(failure.headline, 1, 0.6, 0.6)
    line(failure.detail, 0.95, 0.85, 0.85)
  end

  g.setFont(fonts.small)
  g.setColor(0.6, 0.6, 0.68)
  local longest = 0
  for _, v in ipairs(steps) do if v > longest then longest = v end end
  g.print(string.format("%d fps   frames while the job ran: %d   longest step(0): %.2f ms   Esc quits",
    love.timer.getFPS(), frames, longest * 1000), 24, g.getHeight() - 28)

  cap_frame_rate()
end

function love.keypressed(key)
  if key == "escape" then love.event.quit() end
end

-- Quitting (Escape, the window closed, SIGINT or SIGTERM) before the video is
-- down stops the download, but the task is paid for: say how to fetch it.
function love.quit()
  if job and job.id and not job.done then
    io.stderr:write(string.format("task %s is not downloaded: fetch it with `%s`\n", job.id,
      messages.fetch_command(job.id, opts.out, job.state == "downloading", opts.interval)))
  end
  if opts and opts.report then write_report(failure and "failed" or (saved and "ok" or "quit")) end
  if client then client:close() end
end
