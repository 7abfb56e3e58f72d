-- A film from a storyboard (client:film, `starvideos film`; docs/lineage.md): shots made one after another, each a
-- keyed job of its own file (<out>.shotNN.mp4: a rerun pays for no shot twice), a shot with `continue` starting
-- from the last frame of the one before (lineage.lua's continue), one with `remix = N` the video of shot N as its
-- reference (lineage.lua's remix), then joined by ffmpeg's concat into one MP4 at
-- out, written whole or not at all (a temporary file renamed): stream copy when the shots agree, else re-encoded.
-- Before the first create every shot is checked (its request by its model's rules, the ffmpeg and the bucket it
-- needs) and priced, and the film's creates counted against the spend limits: a film that cannot be made whole pays
-- for no shot.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local shell = require "starvideos.shell"
local Sink = require "starvideos.sink"
local Create = require "starvideos.create"
local X = require "starvideos.extension"
local lineage = require "starvideos.lineage"
local Join = require "starvideos.film_join"

local type, ipairs, pairs, tostring, string_format = type, ipairs, pairs, tostring, string.format
local new_error = errors.new_error

local M = {}

local function refused(field, fmt, ...)
  return nil, new_error("invalid_request", "film: " .. string_format(fmt, ...) .. " (nothing was sent)",
    { field = field })
end

-- A refusal of shot i (field: the culprit, its kind kept from err when given), before anything was sent.
local function shot_refused(i, field, message, err)
  local e = new_error(err and err.kind or "invalid_request", string_format("film: shot %d: %s (nothing was sent)", i,
    message), { field = field, shot = i })
  for k, v in pairs(err or {}) do if e[k] == nil then e[k] = v end end
  return nil, e
end

-- The file of shot i of a film at out.
function M.shot_path(out, i) return (out:gsub("%.mp4$", "")) .. string_format(".shot%02d.mp4", i) end

-- Each shot's params (the shot without `continue`), checked: the list, or nil, err.
local function shots_of(shots)
  if type(shots) ~= "table" or shots[1] == nil then
    return refused("shots", "a list of shots expected ({prompt =, model =, ...}, ...), got %s", type(shots))
  end
  local list = {}
  for i, s in ipairs(shots) do
    if type(s) ~= "table" then return refused("shots[" .. i .. "]", "a shot table expected, got %s", type(s)) end
    local params = {}
    for k, v in pairs(s) do if k ~= "continue" and k ~= "remix" then params[k] = v end end
    local r = s.remix
    if r ~= nil and (type(r) ~= "number" or r ~= math.floor(r) or r < 1 or r >= i) then
      return refused("shots[" .. i .. "].remix", "the index of a shot before this one expected (1 to %d), got %s",
        i - 1, tostring(r))
    end
    if r and s.continue then
      return refused("shots[" .. i .. "]", "a shot either continues the one before or remixes one, not both")
    end
    if s.continue ~= nil and type(s.continue) ~= "boolean" then
      return refused("shots[" .. i .. "].continue", "true or false expected, got %s", type(s.continue))
    end
    if s.continue and i == 1 then
      return refused("shots[1].continue", "the first shot has no shot before it to continue")
    end
    if s.continue and s.last_image == nil then
      return refused("shots[" .. i .. "].last_image", "a shot that continues the one before needs its last_image")
    end
    list[i] = { params = params, continue = s.continue == true, remix = r }
  end
  return list
end

-- Stand-ins for what a shot takes from one made before it, checked by its model's rules before it is made.
local LATER_FRAME, LATER_VIDEO = "https://frame.invalid/last.png", "https://frame.invalid/shot.mp4"

-- A remix's reference video (p's last, shot n's, whose request was) by the model's rules on reference videos, as
-- long as that shot asks: nil, or the error of a rule it breaks for certain (starvideos_o3 takes 3 to 10 s).
local function video_rule(p, was, n)
  local m = core.models[was.model]
  local seconds = was.duration or m and m.duration.default
  if not seconds then return nil end
  local field = "referenceVideos[" .. #p.referenceVideos .. "]"
  for _, f in ipairs(core.media_check(p.model, { { field = field, name = "referenceVideos", status = 200,
    info = { kind = "video", type = "mp4", duration = seconds } } })) do
    if f.definite then
      return new_error("invalid_request", string_format("%s (shot %d's video, as long as it asks)", f.message, n),
        { field = f.field })
    end
  end
end

-- Each shot's request as it will be sent (list: shots_of's): a shot that continues the one before, or remixes shot
-- N, takes that one's model, and on that model its duration, ratio and resolution, where it gives none (as
-- lineage.lua's continue and remix do), and its last frame as first_image, or its video as a reference video (the
-- stand-ins).  Each checked by its model's rules: the list, or nil, err (err.shot: the shot refused).
local function requests_of(list)
  local reqs = {}
  for i, s in ipairs(list) do
    local p = lineage.copy(s.params)
    if s.continue then
      lineage.shaped(p, reqs[i - 1])
      p.first_image = LATER_FRAME
    elseif s.remix then
      lineage.shaped(p, reqs[s.remix], true)
      local refs = type(p.referenceVideos) == "table" and p.referenceVideos.file == nil and p.referenceVideos
        or { p.referenceVideos }
      refs[#refs + 1] = LATER_VIDEO
      p.referenceVideos = refs
    end
    local text, err = Create.extra_json(p)
    local ok = not err
    if ok then ok, err = core.validate(p, text) end
    if ok and s.remix then err = video_rule(p, reqs[s.remix], s.remix); ok = not err end
    if not ok then
      err.shot = i
      return nil, err
    end
    reqs[i] = p
  end
  return reqs
end

-- The request each shot of a storyboard will send (the checks of client:film before anything is sent): the list,
-- or nil, err (err.shot: the shot refused; the message the model's rule's, as validate's).
function M.requests(shots)
  local list, err = shots_of(shots)
  if not list then return nil, err end
  return requests_of(list)
end

-- The local file a shot sends, put into a bucket first: a continue's frame, a remix's video (a client with a bucket
-- for files, lineage.bucket_for_files: without, the video's URL goes), a file of its own ({file = path}): the field,
-- or nil.
local function local_file(client, s, req)
  if s.continue then return "first_image" end
  if s.remix and lineage.bucket_for_files(client.ctx) then return "referenceVideos" end
  for _, r in ipairs(Create.references(req)) do if r.file then return r.field end end
end

-- Whether the local files of the shots to make (planned: a shot made already sends none) can be put into the bucket
-- (the references point's `ready`: no network): nil, or the refusal of the first shot that sends one.
local function bucket_for(client, list, reqs, planned)
  for i, s in ipairs(list) do
    local field = planned.shots[i].action == "create" and local_file(client, s, reqs[i])
    if field then
      local refs, err = X.find("references", nil, "local files as references", field)
      if refs and refs.ready then refs, err = refs.ready(client.ctx) end
      if refs then return nil end -- (one bucket for every shot)
      local what = s.continue and string_format("its first_image (the last frame of shot %d)", i - 1) or field
      return select(2, shot_refused(i, err.field, string_format("%s is a local file, which needs a bucket: %s",
        what, err.message), err))
    end
  end
end

-- What the ledger holds of each file, by its path or out as recorded: "none" for one made, "download" for one whose
-- task was created and has not failed (the shot's keyed job follows it: nothing paid).
local function held(client)
  local by = {}
  for _, t in ipairs(client:tasks() or {}) do
    if t.path then by[t.path] = "none" end
    if t.out and by[t.out] == nil and (t.state == "created" or t.state == "completed") then by[t.out] = "download" end
  end
  return by
end

-- What a film would make, sending nothing (reqs: each shot's request): {shots = {{index, path, action ("create";
-- "download": its task created before, followed; "none": its file made already), model (the one it takes),
-- continues, remixes}}, creates, cost (when every price is known)}.
local function plan(client, reqs, list, out)
  local by, prices = held(client), client.cfg.prices or {}
  local res, cost = { shots = {}, creates = 0 }, 0
  for i, s in ipairs(list) do
    local path, model = M.shot_path(out, i), reqs[i].model
    local action = by[path] or by[Sink.recorded(path)] or "create" -- (a relative out: as recorded)
    res.shots[i] = { index = i, path = path, action = action, model = model, continues = s.continue,
      remixes = s.remix }
    if action == "create" then
      res.creates = res.creates + 1
      cost = cost and prices[model] and cost + prices[model] or nil
    end
  end
  res.cost = cost
  return res
end

-- The film's creates (each shot not made yet) against the spend limits, all of them counted before the first is
-- sent, as a plan counts a batch's (batch.lua's capped): nil, or the refusal of the first a limit would refuse.
local function within_limits(client, planned, tenant)
  if not client.cfg.spend then return nil end
  local entries = {}
  for _, s in ipairs(planned.shots) do
    if s.action == "create" then
      entries[#entries + 1] = { action = "create", reason = "new", model = s.model, shot = s.index }
    end
  end
  for k, e in ipairs(require("starvideos.batch").capped(client.ctx, { entries = entries }, tenant).entries) do
    if e.reason == "spend_limited" then
      return select(2, shot_refused(e.shot, e.err.field, string_format("the film's %d create%s%s %s more than the "
        .. "spend limits let through: %s%s", planned.creates, planned.creates == 1 and "" or "s", planned.cost
        and string_format(" (cost %.14g)", planned.cost) or "", planned.creates == 1 and "is" or "are", k > 1
        and "after the shots before it, " or "", e.err.message), e.err))
    end
  end
end

-- Every check of client:film before its first create, its plan made: the shots' list and plan, or nil, err.
local function checked(client, shots, opts)
  local list, err = shots_of(shots)
  if not list then return nil, err end
  if type(opts.out) ~= "string" then return refused("out", "opts.out is required: the film's file") end
  if Sink.object(opts.out) then -- (its shots objects beside it, read back and joined here, the film put: M.film)
    local sink, why = Sink.of(client.cfg, opts.out), Sink.refusal(opts.out)
    if why then return nil, why end
    if not sink.place then
      return refused("out", "opts.out %s: its sink cannot take a file joined here (no place)",
        shell.visible(opts.out, true))
    end
    local ok, oerr = sink.check_out(opts.out, client.cfg)
    if not ok then return nil, oerr end
  end
  if not client.ledger.records then -- (a shot is a keyed job only there: without, a rerun pays for each again)
    return refused("journal", "a film's shots are keyed jobs of a ledger: give journal or store (without, a rerun "
      .. "after Ctrl-C pays for every shot again)")
  end
  local reqs, rerr = requests_of(list)
  if not reqs then return shot_refused(rerr.shot, rerr.field, rerr.message, rerr) end
  for i, s in ipairs(opts.fallback and list or {}) do -- (a new shot's fallback models: checked before any create)
    local ferr = not (s.continue or s.remix) and select(2, require("starvideos.fallback").attempts(reqs[i],
      opts.fallback))
    if ferr then return shot_refused(i, ferr.field, (ferr.message:gsub(": nothing was sent$", "")), ferr) end
  end
  local planned = plan(client, reqs, list, opts.out)
  err = Join.tools() or bucket_for(client, list, reqs, planned) or within_limits(client, planned, opts.tenant)
  if err then return nil, err end
  return list, planned
end

-- A failure once the film's first n shots are made (each paid for, by this call or an earlier one): err, saying
-- so (err.made: n).
local function after_made(err, n)
  if n > 0 then
    err.made = n
    err.message = string_format("%s; shot%s 1%s %s made and paid for: run again, the film pays for none of them twice",
      tostring(err.message), n > 1 and "s" or "", n > 1 and " to " .. n or "", n > 1 and "are" or "is")
  end
  return nil, err
end

-- A cancelled job's error at what (verb_job.lua: the job ends with it).
local function cancelled_at(what) return new_error("io", "the job was cancelled before " .. what, { field = "out" }) end

-- The shots (objects: tasks) read back into local files of a folder of its own and verified, joined there (each
-- command under timeout) and the film put as out by its sink (place, by the call's deadline): true and whether it was
-- a stream copy, or nil, err.  Nothing read back is left (in a job, however it ends: its scratch).
local function into_object(client, tasks, out, opts, timeout, mark)
  local job = require "starvideos.verb_job"
  local dir, derr = lineage.private_dir()
  if not dir then return nil, derr end
  job.scratch(dir)
  local base, files, ok, same = dir .. "/film", {}, true, nil
  job.scratch(base .. ".mp4")
  for i, t in ipairs(tasks) do
    if job.cancelled() then ok, same = nil, cancelled_at("shot " .. i .. " was read back") break end
    files[i], same = lineage.read_copy(client, "film", t, string_format("%s.shot%02d.mp4", base, i), opts)
    if not files[i] then ok, same.shot = false, i break end
  end
  local marked
  if ok then ok, same, marked = Join.join(files, base .. ".mp4", timeout, mark) end
  local made -- (the film's SHA-256 and size, for its provenance record)
  if ok then
    local sum, err = lineage.hash_file(client, base .. ".mp4")
    made = sum and { sha256 = sum, bytes = require("starvideos.download").size(base .. ".mp4") }
    local limit = opts.timeout or client.cfg.wait_timeout
    local ctx = setmetatable({ deadline = limit and core.now() + limit }, { __index = client.ctx })
    if not sum then err = new_error("io", "film: " .. tostring(err), { field = "out" })
    elseif job.cancelled() then sum, err = nil, cancelled_at("the film was put")
    else sum, err = Sink.of(client.cfg, out).place(base .. ".mp4", out, ctx, sum) end
    if not sum then ok, same = nil, err end
  end
  for _, f in ipairs(files) do os.remove(f) end
  os.remove(base .. ".mp4")
  os.remove(dir)
  return ok or nil, same, made, marked
end

-- A film plan's worst case with fallback models (fallback.lua's): a new shot's create (a continue's or a remix's
-- falls back to no other model) may create one of each fallback model after: planned.worst = {creates =, cost =}
-- (cost nil when a price is unknown).
local function worst(client, list, planned, fallback)
  local prices, creates, cost = client.cfg.prices or {}, planned.creates, planned.cost
  for i, s in ipairs(planned.shots) do
    if s.action == "create" and not (list[i].continue or list[i].remix) then
      creates = creates + #fallback
      for _, m in ipairs(fallback) do cost = cost and prices[m] and cost + prices[m] or nil end
    end
  end
  planned.worst = { creates = creates, cost = cost }
  return planned
end

-- client:film's: the shots made (client:generate for a new shot, client:continue for one that continues,
-- client:remix for one that remixes an earlier shot) and joined: {path, shots = {tasks}, copied}, or nil, err
-- (err.shot: the shot that failed); with opts.dry_run, the plan.
function M.film(client, shots, opts)
  local list, planned = checked(client, shots, opts)
  if not list then return nil, planned end
  if opts.dry_run then return opts.fallback and worst(client, list, planned, opts.fallback) or planned end
  local job = require "starvideos.verb_job" -- (a job's fields, its cancel: opts.job)
  local tasks, paths, doing = {}, {}, job.doing
  for i, s in ipairs(list) do
    if job.cancelled() then return after_made(cancelled_at("shot " .. i .. " was made"), i - 1) end
    doing("preparing", i)
    local o = {}
    for k, v in pairs(opts) do if k ~= "dry_run" and k ~= "job" then o[k] = v end end
    o.out = M.shot_path(opts.out, i)
    local t, terr
    if s.continue then t, terr = client:continue(tasks[i - 1], s.params, o)
    elseif s.remix then t, terr = client:remix(tasks[s.remix], s.params, o)
    else t, terr = client:generate(s.params, o) end
    if not t then
      terr.shot = i
      return after_made(terr, i - 1)
    end
    tasks[i], paths[i] = t, o.out
  end
  doing("joining")
  local ok, same, made, marked
  local mark = require("starvideos.mark").of_film(client.cfg, tasks)
  if job.cancelled() then ok, same = nil, cancelled_at("the film was joined")
  elseif Sink.object(opts.out) then
    ok, same, made, marked = into_object(client, tasks, opts.out, opts, lineage.timeout_of(client, opts), mark)
  else ok, same, marked = Join.join(paths, opts.out, lineage.timeout_of(client, opts), mark) end
  if not ok then return after_made(same, #list) end
  local recorded, rerr = require("starvideos.provenance").filmed(client, opts.out, paths, tasks, made, marked,
    lineage.hash_file) -- (its shots' records named)
  return { path = opts.out, shots = tasks, copied = same, bytes = made and made.bytes, -- (an object's: its record's)
    provenance_error = not recorded and rerr or nil }
end

return M
