-- A film from a storyboard (client:film, `starvideos film`; docs/lineage.md): shots made one after another, each a
-- keyed job of its own file (<out>.shotNN.mp4: a rerun pays for no shot twice), a shot with `continue` starting
-- from the last frame of the one before (lineage.lua's continue), then joined by ffmpeg's concat into one MP4 at
-- out, written whole or not at all (a temporary file renamed): stream copy when the shots agree, else re-encoded.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local errors = require "starvideos.errors"
local shell = require "starvideos.shell"

local type, ipairs, pairs, tostring, string_format = type, ipairs, pairs, tostring, string.format
local new_error = errors.new_error

local M = {}

local function refused(field, fmt, ...)
  return nil, new_error("invalid_request", "film: " .. string_format(fmt, ...) .. " (nothing was sent)",
    { field = field })
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
    for k, v in pairs(s) do if k ~= "continue" then params[k] = v end end
    if s.continue ~= nil and type(s.continue) ~= "boolean" then
      return refused("shots[" .. i .. "].continue", "true or false expected, got %s", type(s.continue))
    end
    if s.continue and i == 1 then
      return refused("shots[1].continue", "the first shot has no shot before it to continue")
    end
    if s.continue and s.last_image == nil then
      return refused("shots[" .. i .. "].last_image", "a shot that continues the one before needs its last_image")
    end
    list[i] = { params = params, continue = s.continue == true }
  end
  return list
end

local function run_cmd(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p and p:read("*a") or ""
  local ok = p and p:close()
  return ok, out
end

-- Whether ffmpeg and ffprobe are on PATH: nil, or the refusal.
local function tools()
  for _, t in ipairs { "ffmpeg", "ffprobe" } do
    if not os.execute("command -v " .. t .. " >/dev/null 2>&1") then
      return select(2, refused("ffmpeg", "%s is not on PATH (Debian: apt-get install ffmpeg): the shots cannot be "
        .. "joined", t))
    end
  end
end

-- A shot's stream as ffprobe says it: "codec WxH rate", or nil.
local function stream_of(path)
  local ok, out = run_cmd("ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height,"
    .. "r_frame_rate,pix_fmt -of csv=p=0 " .. shell.word(path))
  return ok and out:gsub("%s+$", "") or nil
end

-- The shots' files joined into out (atomically): true and whether it was a stream copy, or nil, err.
function M.join(paths, out)
  local list, first, same = out .. ".film-list", nil, true
  local f = assert(io.open(list, "wb"))
  for i, p in ipairs(paths) do -- (by its name: concat reads a path against the list's folder, the shots' own)
    f:write("file ", shell.word((p:match("[^/]+$"))), "\n")
    local s = stream_of(p)
    if i == 1 then first = s elseif s ~= first then same = false end
  end
  f:close()
  local tmp = out .. ".film-part.mp4"
  local ok, said = run_cmd(string_format("ffmpeg -v error -nostdin -y -f concat -safe 0 -i %s %s -movflags +faststart "
    .. "%s", shell.word(list), same and "-c copy" or "-c:v libx264 -pix_fmt yuv420p -c:a aac", shell.word(tmp)))
  os.remove(list)
  if not ok then
    os.remove(tmp)
    return nil, new_error("io", "film: ffmpeg could not join the shots: " .. said, { field = "out" })
  end
  local renamed, rerr = os.rename(tmp, out)
  if not renamed then
    os.remove(tmp)
    return nil, new_error("io", "film: cannot write " .. out .. ": " .. tostring(rerr), { field = "out" })
  end
  return true, same
end

-- What a film would make, sending nothing: {shots = {{index, path, action ("create", or "none": its file made
-- already), model}}, creates, cost (when every price is known)}.
local function plan(client, list, out)
  local made, prices = {}, client.cfg.prices or {}
  for _, t in ipairs(client:tasks() or {}) do if t.path then made[t.path] = true end end
  local res, cost = { shots = {}, creates = 0 }, 0
  for i, s in ipairs(list) do
    local path = M.shot_path(out, i)
    local action = made[path] and "none" or "create"
    res.shots[i] = { index = i, path = path, action = action, model = s.params.model, continues = s.continue }
    if action == "create" then
      res.creates = res.creates + 1
      cost = cost and prices[s.params.model] and cost + prices[s.params.model] or nil
    end
  end
  res.cost = cost
  return res
end

-- client:film's: the shots made (run(params, opts) for a new shot, cont(parent, params, opts) for one that
-- continues) and joined: {path, shots = {tasks}, copied}, or nil, err (err.shot: the shot that failed); with
-- opts.dry_run, the plan.
function M.film(client, shots, opts, run, cont)
  local list, err = shots_of(shots)
  if not list then return nil, err end
  if type(opts.out) ~= "string" then return refused("out", "opts.out is required: the film's file") end
  if not client.ledger.records then -- (a shot is a keyed job only there: without, a rerun pays for each again)
    return refused("journal", "a film's shots are keyed jobs of a ledger: give journal or store (without, a rerun "
      .. "after Ctrl-C pays for every shot again)")
  end
  if opts.dry_run then return plan(client, list, opts.out) end
  local missing = tools()
  if missing then return nil, missing end
  local tasks, paths = {}, {}
  for i, s in ipairs(list) do
    local o = {}
    for k, v in pairs(opts) do if k ~= "dry_run" then o[k] = v end end
    o.out = M.shot_path(opts.out, i)
    local t, terr
    if s.continue then t, terr = cont(tasks[i - 1], s.params, o) else t, terr = run(s.params, o) end
    if not t then
      terr.shot = i
      return nil, terr
    end
    tasks[i], paths[i] = t, o.out
  end
  local ok, same = M.join(paths, opts.out)
  if not ok then return nil, same end
  return { path = opts.out, shots = tasks, copied = same }
end

return M
