-- What the game makes after its video (main.lua's --remix and --film N, which need --journal): a remix of it, then a
-- film of N shots, each as a job (`opts.job = true`) moved by the same client:step(0) a frame, so that the frames
-- keep coming while the parent's SHA-256 is taken and the shots are joined (ffmpeg), each on a thread of the
-- library's; with --blocking, the same calls made the blocking way inside one frame, for comparison.  It times the
-- frames of each: the longest gap between two frames' starts (and the longest step(0)) while the job was preparing
-- (the parent hashed, a shot's parent checked), joining, polling (nothing of it off the frame: the machine's own
-- floor), and over the whole job.
local A = {}
A.__index = A

-- parent: the first video's job, done; o: main.lua's options (out, interval, remix, film, blocking).
function A.new(client, parent, o)
  local self = setmetatable({ client = client, parent = parent, o = o, todo = {}, results = {}, last = nil }, A)
  local stem = o.out:gsub("%.mp4$", "")
  if o.remix then
    self.todo[#self.todo + 1] = { name = "remix", start = function(opts)
      return client:remix(parent.id, { prompt = "the same, as a watercolour" }, opts)
    end, out = stem .. "-remix.mp4" }
  end
  if o.film then
    local shots = {}
    for i = 1, o.film do shots[i] = { model = "videos", prompt = "shot " .. i .. " of the film", duration = 4 } end
    self.todo[#self.todo + 1] = { name = "film", start = function(opts) return client:film(shots, opts) end,
      out = stem .. "-film.mp4" }
  end
  return self
end

-- Whether everything after the video ended.
function A:done() return #self.todo == 0 and not self.job end

-- Each of the maxima of r (its prefix's) given v.
local function most(r, prefix, gap, step, work)
  for k, v in pairs { gap_max = gap, step_max = step, work_max = work } do
    if v then r[prefix .. k] = math.max(r[prefix .. k] or 0, v) end
  end
end

-- One frame (t: its start; step, work: this frame's step(0), its wall and its own work, main.lua's): the gap since
-- the last frame counted for what the job was doing during it, as its step; the job stepped (client:step(0) is
-- main.lua's: it steps every job); the next call started once one ended.
function A:update(t, step, work)
  local job = self.job
  if job then
    local r = self.results[self.current.name]
    local gap = self.last and t - self.last or 0
    local phase = self.phase_seen
    r.frames = r.frames + 1
    most(r, "", gap, step, work)
    if phase then
      r[phase .. "_frames"] = (r[phase .. "_frames"] or 0) + 1
      most(r, phase .. "_", gap, step, work)
    end
    self.phase_seen = job.state
    if job.done then
      r.result = job.err and "failed" or "ok"
      r.message, r.path = job.err and job.err.message or "none", job.path
      self.job = nil
    end
  elseif self.todo[1] then
    self.current = table.remove(self.todo, 1)
    local opts = { out = self.current.out, interval = self.o.interval, job = not self.o.blocking }
    local r = { frames = 0, started = t }
    self.results[self.current.name] = r
    if self.o.blocking then -- the whole call in this frame
      local made, err = self.current.start(opts)
      r.result, r.message = made and "ok" or "failed", err and err.message or "none"
      r.path, r.gap_max, r.frames = made and made.path, love.timer.getTime() - t, 1 -- luacheck: globals love
    else
      self.job, self.phase_seen = self.current.start(opts), "preparing"
    end
  end
  self.last = t
end

-- A line a frame draws.
function A:status()
  local job = self.job
  if not job then return nil end
  return string.format("%s: %s%s", self.current.name, job.state, job.shot and " (shot " .. job.shot .. ")" or "")
end

-- The report's lines ({key, value}s): each call's result, frames and longest gaps (ms).
function A:report(lines)
  local function ms(v) return v and string.format("%.3f", v * 1000) or "none" end
  for name, r in pairs(self.results) do
    for _, kv in ipairs {
      { "result", r.result or "unfinished" }, { "message", r.message or "none" }, { "path", r.path or "none" },
      { "frames", r.frames }, { "gap_max_ms", ms(r.gap_max) }, { "step_max_ms", ms(r.step_max) },
      { "work_max_ms", ms(r.work_max) },
      { "preparing_frames", r.preparing_frames or 0 }, { "preparing_gap_max_ms", ms(r.preparing_gap_max) },
      { "preparing_step_max_ms", ms(r.preparing_step_max) }, { "preparing_work_max_ms", ms(r.preparing_work_max) },
      { "joining_frames", r.joining_frames or 0 }, { "joining_gap_max_ms", ms(r.joining_gap_max) },
      { "joining_step_max_ms", ms(r.joining_step_max) }, { "joining_work_max_ms", ms(r.joining_work_max) },
      { "polling_frames", r.polling_frames or 0 }, { "polling_gap_max_ms", ms(r.polling_gap_max) },
    } do
      lines[#lines + 1] = { name .. "_" .. kv[1], kv[2] }
    end
  end
end

return A
