-- starvideos.cli.display: what a person sees while a command runs, and its result.
--
-- On a terminal one live line, redrawn with \r: the task's status and elapsed
-- time with a spinner, then a progress bar while downloading. Off a terminal,
-- one plain line per status change (nothing with --json: stdout carries JSON
-- and the display, on stderr, stays quiet but for the live line).
--
-- It is fed the library's progress events, one shape for every on_progress:
--   { type = "status" | "progress", id =, task =, status =, bytes =, total =,
--     index = (wait_all/resume), path = (downloads), eta = (status: the seconds left) }

local output = require "starvideos.cli.output"
local args = require "starvideos.cli.args"
local json = require "starvideos.cli.json"

local type, ipairs, pairs, next, tostring, setmetatable = type, ipairs, pairs, next, tostring, setmetatable
local io_popen, io_stdout, io_stderr, os_getenv, os_date = io.popen, io.stdout, io.stderr, os.getenv, os.date
local string_format, string_rep, table_concat, table_sort = string.format, string.rep, table.concat, table.sort
local math_floor, math_min, math_max, math_huge = math.floor, math.min, math.max, math.huge
local write, out = output.write, output.out

local M = {}

-- ----------------------------------------------------- numbers, sizes

-- Sizes in binary units, labelled as such: 1536 -> "1.5 KiB", 3 * 2^20 -> "3.0 MiB".
function M.human_size(n)
  n = n or 0
  if n < 1024 then return string_format("%d B", math_floor(n)) end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local i = 0
  repeat n = n / 1024; i = i + 1 until n < 1024 or i == #units
  return string_format("%.1f %s", n, units[i])
end
local human_size = M.human_size

-- 75 -> "1:15", 3675 -> "1:01:15"
function M.clock(seconds)
  seconds = math_floor(seconds)
  local h, m, s = math_floor(seconds / 3600), math_floor(seconds % 3600 / 60), seconds % 60
  if h > 0 then return string_format("%d:%02d:%02d", h, m, s) end
  return string_format("%d:%02d", m, s)
end
local clock = M.clock

-- (loaded when asked: the journal needs the C core, which parsing arguments does not)
function M.file_size(path) return require("starvideos.download").size(path) end

-- ------------------------------------------------------------ results

-- A task for a person: "id:        video_123" ...
function M.print_task(task)
  local function show(v)
    if type(v) == "table" then return json.encode(v) end
    if type(v) == "number" then return json.number_text(v) end
    return tostring(v)
  end
  local duration = task.actualDuration
  if type(duration) == "number" then duration = json.number_text(duration) .. " s" end
  local rows = {
    { "id", task.id }, { "model", task.model }, { "status", task.status }, { "video_url", task.video_url },
    { "duration", duration }, { "error", task.error }, { "path", task.path },
    { "parent", task.parent and task.parent .. " (" .. tostring(task.relation) .. ")" },
  }
  for _, r in ipairs(rows) do
    if r[2] ~= nil and r[2] ~= false then out(string_format("%-10s %s\n", r[1] .. ":", show(r[2]))) end
  end
end

-- The bytes each out got, as its progress events said (an object's size: it has no file here to look at).
local sent = {}

-- The size of what was saved at path (a file's, else an object's as sent), or nil.
function M.saved_size(path) return M.file_size(path) or sent[path] end

-- "saved PATH (16.5 KiB, 16863 bytes)"; bytes: the size when no file here has it (a film put into a bucket).
function M.saved_line(path, bytes)
  local size = M.saved_size(path) or bytes
  return string_format("saved %s (%s)", path, size and (size < 1024 and string_format("%d bytes", size)
    or string_format("%s, %d bytes", human_size(size), size)) or "size unknown")
end

-- ------------------------------------------------------------ the width

local DEFAULT_WIDTH = 80

-- The terminal's width in columns: $COLUMNS when it is a whole number, else what
-- `stty size` says of the controlling terminal, else 80.  The caller asks once
-- (a command's display does, at its first live line), never per redraw.
-- getenv and popen are for the specs.
function M.terminal_width(getenv, popen)
  local cols = tonumber((getenv or os_getenv)("COLUMNS") or "")
  if cols and cols >= 1 and cols % 1 == 0 then return cols end
  local p = (popen or io_popen)("stty size </dev/tty 2>/dev/null", "r")
  local text = p and p:read("*a") or ""
  if p then p:close() end
  cols = tonumber(text:match("^%s*%d+%s+(%d+)"))
  if cols and cols >= 1 then return cols end
  return DEFAULT_WIDTH
end

-- The columns s takes: its UTF-8 characters (continuation bytes take none).
local function columns(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end
M.columns = columns

-- The first n columns of s, never cutting a UTF-8 character in two.
local function clip(s, n)
  if columns(s) <= n then return s end
  local i, seen = 1, 0
  while i <= #s do
    local b = s:byte(i)
    if b < 128 or b >= 192 then
      if seen == n then break end
      seen = seen + 1
    end
    i = i + 1
  end
  return s:sub(1, i - 1)
end
M.clip = clip

-- head .. tail in at most n columns: the tail whole when it can be, the head
-- shortened (ending with "..") to make room.
local function fit(head, tail, n)
  if columns(head) + columns(tail) <= n then return head .. tail end
  local room = n - columns(tail)
  if room >= 6 then return clip(head, room - 2) .. ".." .. tail end
  return clip(head .. tail, n)
end
M.fit = fit

-- The states of client:tasks, in the order a list counts them.
local STATES = { "pending", "created", "completed", "downloaded", "failed", "abandoned" }

-- The ledger's tasks (client:tasks) as a table, one line each (clipped to the
-- terminal on one), a failed one's error under it, then the count by state.
function M.print_tasks(list, tty)
  local head, tenants, costs, reasons = { "ID", "STATE", "CREATED (UTC)", "MODEL" }, false, false, false
  for _, t in ipairs(list) do
    tenants, costs, reasons = tenants or t.tenant ~= nil, costs or t.cost ~= nil, reasons or t.reason ~= nil
  end
  if reasons then head[#head + 1] = "REASON" end -- (a failed task's: failure.lua's)
  if tenants then head[#head + 1] = "TENANT" end -- (columns of their own only when a task has one)
  if costs then head[#head + 1] = "COST" end
  head[#head + 1], head[#head + 2] = "FILE", "PROMPT"
  local rows, width, n = { head }, {}, #head - 1
  for _, t in ipairs(list) do
    local later = t.superseded_by and " (superseded: task " .. t.superseded_by .. " saved its file)" or ""
    local up = t.uploading and t.state ~= "downloaded" and t.uploading.parts -- (an upload in progress: its parts)
    local r = { t.id or t["local"], up and string_format("uploading, %d part%s", up, up == 1 and "" or "s") or t.state,
      t.created_at and os_date("!%Y-%m-%d %H:%M:%S", t.created_at)
      or "-", t.model or "-", error = (t.error or t.superseded_by) and tostring(t.error or "-") .. later }
    if reasons then r[#r + 1] = t.reason and t.reason .. (t.input and " (" .. t.input .. ")" or "") or "-" end
    if tenants then r[#r + 1] = t.tenant and t.tenant:gsub("%c", " ") or "-" end
    if costs then r[#r + 1] = t.cost and string_format("%.14g", t.cost) or "unknown" end
    r[#r + 1], r[#r + 2] = t.path or t.out or "-", ((t.prompt or ""):gsub("%c", " "))
    rows[#rows + 1] = r
  end
  for _, r in ipairs(rows) do
    for i = 1, n do width[i] = math_max(width[i] or 0, columns(tostring(r[i]))) end
  end
  local room = tty and M.terminal_width() - 1 or math_huge
  for _, r in ipairs(rows) do
    local cells = {}
    for i = 1, n do cells[i] = tostring(r[i]) .. string_rep(" ", width[i] - columns(tostring(r[i]))) end
    cells[n + 1] = r[n + 1]
    out(clip(table_concat(cells, "  "), room), "\n")
    if r.error then out(clip("  error: " .. tostring(r.error), room), "\n") end
  end
  out(M.count_line(list), "\n")
end

-- "3 tasks: 2 downloaded, 1 failed; cost 1.2": the tasks of list counted by state (and the superseded failures), and
-- their recorded costs added up.
function M.count_line(list)
  local count, parts, superseded = {}, {}, 0
  for _, t in ipairs(list) do
    count[t.state] = (count[t.state] or 0) + 1
    if t.superseded_by then superseded = superseded + 1 end
  end
  for _, state in ipairs(STATES) do
    if count[state] then parts[#parts + 1] = count[state] .. " " .. state end
  end
  if superseded > 0 then -- (a later task of their file saved it: no video is missing for them)
    parts[#parts + 1] = string_format("of the failed, %d superseded by a later task that saved the file", superseded)
  end
  return string_format("%d task%s: %s%s", #list, #list == 1 and "" or "s", table_concat(parts, ", "), M.cost_line(list))
end

-- ", cost 1.2 (3 tasks priced, 1 unknown)": the recorded costs of the tasks that have an id added up ("" when
-- none is priced).
function M.cost_line(list)
  local sum, priced, unknown = 0, 0, 0
  for _, t in ipairs(list) do
    if t.cost then sum, priced = sum + t.cost, priced + 1 elseif t.id then unknown = unknown + 1 end
  end
  if priced == 0 then return "" end
  return string_format("; cost %.14g%s", sum, unknown > 0 and string_format(" (%d task%s of unknown price "
    .. "not counted)", unknown, unknown == 1 and "" or "s") or "")
end

-- What `list --check` found of each downloaded file (as_json: a JSON object a line), then how
-- many were as saved: the exit status, 1 when one is missing or changed.
function M.print_checks(list, as_json)
  local count, bad = { ok = 0, missing = 0, changed = 0 }, 0
  for _, t in ipairs(list) do
    if t.check then
      count[t.check] = count[t.check] + 1
      if t.check ~= "ok" then bad = bad + 1 end
      if as_json then out(json.encode(t), "\n")
      else out(string_format("%-8s %s  %s\n", t.check, t.id, t.check_error or t.path)) end
    end
  end
  if not as_json then
    out(string_format("%d file%s checked: %d as saved, %d missing, %d changed\n", count.ok + bad,
      count.ok + bad == 1 and "" or "s", count.ok, count.missing, count.changed))
    if bad > 0 then
      local cmd = args.INVOKED
      out("to repair: run the command that saved them again, with the same ledger (the same `" .. cmd .. " batch`, "
        .. "or `" .. cmd .. " generate` with the same --out): "
        .. "each missing or changed file is fetched again from its task, creating nothing, "
        .. "while the service keeps the video (docs/batch.md)\n")
    end
  end
  return bad > 0 and 1 or 0
end

-- A download's bar in at most n columns: "[####....] 42%  1.0 MiB / 2.4 MiB  3.1 MiB/s".
-- The bar narrows first (24 marks at most, 6 at least), then the rate goes, then the bar.
function M.bar_text(bytes, total, rate, n)
  local frac = math_min(1, bytes / total)
  local numbers = string_format("%3d%%  %s / %s", math_floor(frac * 100), human_size(bytes), human_size(total))
  local with_rate = rate ~= "" and numbers .. "  " .. rate or numbers
  for _, text in ipairs { with_rate, numbers } do
    local marks = math_min(24, n - 3 - columns(text))
    if marks >= 6 then
      local fill = math_floor(frac * marks + 0.5)
      return string_format("[%s%s] %s", string_rep("#", fill), string_rep(".", marks - fill), text)
    end
  end
  return clip(numbers, n)
end

-- The time left of a status event's eta ({ p50 =, p90 = } seconds, `since` seconds ago): "about 40 s
-- left", "about 3 min left", "any moment now", or "longer than usual" once the learned tasks of its
-- kind had all ended; nil without an eta.
function M.eta_text(eta, since)
  if type(eta) ~= "table" or type(eta.p50) ~= "number" or type(eta.p90) ~= "number" then return nil end
  local left = eta.p50 - (since or 0)
  if left >= 90 then return string_format("about %d min left", math_floor(left / 60 + 0.5)) end
  if left >= 1 then return string_format("about %d s left", math_floor(left + 0.5)) end
  return eta.p90 - (since or 0) >= 1 and "any moment now" or "longer than usual"
end

-- ------------------------------------------------------------ the live line

local Display = {}
Display.__index = Display

-- stream: where to draw; tty: whether it is a terminal; quiet: no plain lines.
function M.new(stream, tty, quiet)
  return setmetatable({ stream = stream, tty = tty, quiet = quiet, active = false, last_draw = -1,
    spin = 0, downloads = {} }, Display)
end

-- The display of a command: on stdout, or on stderr when stdout carries JSON.
-- isatty(fd) -> boolean.
function M.for_command(json_mode, isatty)
  if json_mode then return M.new(io_stderr, isatty(2), true) end
  return M.new(io_stdout, isatty(1), false)
end

-- The columns a live line may take: one less than the terminal's width, so
-- that the cursor never reaches the last column (where some terminals wrap).
function Display:room()
  if not self.width then self.width = M.terminal_width() end
  return math_max(1, self.width - 1)
end

function Display:live(text)
  if not self.tty then return end
  write(self.stream, "\r", clip(text, self:room()), "\27[K")
  self.active = true
end

-- Finish the live line: erase it, or keep it (a finished progress bar).
function Display:finish(keep)
  if not self.active then return end
  write(self.stream, keep and "\n" or "\r\27[K")
  self.active = false
end

function Display:line(text)
  if self.quiet then return end
  self:finish(false)
  write(self.stream, text, "\n")
end

-- A plain line, off a terminal only (a terminal has the live line instead).
function Display:plain(text)
  if not self.tty then self:line(text) end
end

-- Many tasks at once (resume): the live line counts them by status.
function Display:many_tasks()
  self.many, self.states = true, {}
end

local SPIN = { "|", "/", "-", "\\" }
local STATUS_ORDER = { queued = 1, processing = 2, completed = 3, failed = 4 }

local function summary(states)
  local count, names, n = {}, {}, 0
  for _, s in pairs(states) do
    s = tostring(s)
    if not count[s] then count[s], names[#names + 1] = 0, s end
    count[s] = count[s] + 1
    n = n + 1
  end
  table_sort(names, function(a, b)
    local ra, rb = STATUS_ORDER[a] or 5, STATUS_ORDER[b] or 5
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  local parts = {}
  for i, s in ipairs(names) do parts[i] = count[s] .. " " .. s end
  return string_format("%d task%s: %s", n, n == 1 and "" or "s", table_concat(parts, ", "))
end

-- The status line, "video_123  processing  about 40 s left  0:12 |" (resume: "2 tasks: 1 queued,
-- 1 processing  0:12 |"), redrawn at most every 0.1 s unless forced; a
-- download's bar keeps the line while it runs.
function Display:status_line(now, force)
  if not self.tty then return end
  if self.bar_until and now < self.bar_until then return end
  if not force and now - self.last_draw < 0.1 then return end
  local head, tail
  if self.many then
    head, tail = next(self.states) and summary(self.states) or self.title, ""
  else
    local left = M.eta_text(self.eta, self.eta_at and now - self.eta_at)
    head, tail = self.id, string_format("  %s%s", self.status or "...", left and "  " .. left or "")
  end
  if not head then return end
  self.last_draw = now
  self.spin = self.spin % #SPIN + 1
  local elapsed = self.started and clock(now - self.started) or ""
  -- on a narrow terminal the id (or the summary) gives way, not the status or the clock
  self:live(fit(head, string_format("%s  %s %s", tail, elapsed, SPIN[self.spin]), self:room()))
end

-- A "status" event: a task was created or polled.
function Display:status_event(ev, now)
  local task = type(ev.task) == "table" and ev.task or {}
  local id, status = ev.id or task.id, ev.status or task.status
  if self.many then
    self.states[ev.index or id or "?"] = status
    self:status_line(now, true)
    return
  end
  if id and id ~= self.id then
    self.id = id
    self:plain("id: " .. tostring(id))
  end
  self.eta, self.eta_at = ev.eta, now
  if status ~= self.status then
    self.status = status
    local left = M.eta_text(ev.eta)
    self:plain("status: " .. tostring(status) .. (left and " (" .. left .. ")" or ""))
  end
  self:status_line(now, true)
end

-- A "progress" event: bytes of a download so far, of total (nil: unknown).
-- A bar on a terminal, redrawn at most every 0.1 s; nothing elsewhere.
function Display:progress(ev, now)
  if not self.tty then return end
  local bytes, total = ev.bytes or 0, ev.total
  local key = self.many and (ev.index or ev.id or 0) or 1
  local dl = self.downloads[key]
  if not dl then
    dl = { start = now, bytes0 = bytes }
    self.downloads[key] = dl
    self.last_draw = -1
  end
  -- the bar has the line from now on (resume: until no bar moved for 0.5 s)
  self.bar_until = self.many and now + 0.5 or math_huge
  local complete = total and total > 0 and bytes >= total
  if not complete and now - self.last_draw < 0.1 then return end
  self.last_draw = now
  local dt = now - dl.start
  local speed = dt > 0.05 and (bytes - dl.bytes0) / dt or nil
  local rate = speed and (human_size(speed) .. "/s") or ""
  local room = self:room()
  -- resume's id before the bar takes at most half the line
  local prefix = self.many and ev.id and fit(tostring(ev.id), "", math_max(6, math_floor(room / 2) - 2)) .. "  " or ""
  local text
  if total and total > 0 then
    text = M.bar_text(bytes, total, rate, room - columns(prefix))
  elseif bytes == 0 then
    text = "downloading..."
  else
    text = string_format("%s  %s", human_size(bytes), rate)
  end
  self:live(prefix .. text)
end

-- Whether a download bar was drawn.
function Display:downloaded() return next(self.downloads) ~= nil end

-- Any progress event: the one on_progress of every command.
function Display:event(ev, now)
  if type(ev) ~= "table" then return end
  if ev.type == "status" then
    self:status_event(ev, now)
  elseif ev.type == "progress" then
    if ev.path then sent[ev.path] = ev.bytes end
    self:progress(ev, now)
  end
end

return M
