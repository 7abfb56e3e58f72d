-- A film's shots joined into one MP4 (film.lua's last step): ffmpeg's concat, a stream copy when every shot's
-- stream agrees (ffprobe), else re-encoded; written whole or not at all (a temporary file renamed), marked before it
-- takes its name.  ffmpeg and ffprobe run inside nginx in its thread pool (shell.run_ok).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local errors = require "starvideos.errors"
local shell = require "starvideos.shell"
local lineage = require "starvideos.lineage"

local ipairs, tostring, string_format = ipairs, tostring, string.format
local new_error = errors.new_error

local M = {}

-- (inside nginx in its thread pool: its worker serves other requests while ffmpeg runs, shell.run_ok)
local function run_cmd(cmd)
  local out, ok = shell.run_ok(cmd)
  return ok, out
end

-- Whether ffmpeg and ffprobe are on PATH: nil, or the refusal (before anything is sent).
function M.tools()
  for _, t in ipairs { "ffmpeg", "ffprobe" } do
    if not shell.has(t) then
      return new_error("invalid_request", string_format("film: %s is not on PATH (Debian: apt-get install ffmpeg): "
        .. "the shots cannot be joined (nothing was sent)", t), { field = "ffmpeg" })
    end
  end
end

-- A shot's stream as ffprobe says it: "codec WxH rate", or nil.
local function stream_of(path, timeout)
  local ok, out = run_cmd(lineage.timed("ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,"
    .. "height,r_frame_rate,pix_fmt -of csv=p=0 " .. shell.word(path), timeout))
  return ok and out:gsub("%s+$", "") or nil
end

-- The shots' files joined into out (atomically), each command killed after timeout seconds (nil: none), marked with
-- mark (mark.lua's box; nil: none) before it takes its name: true, whether it was a stream copy and marked (true,
-- or why not; nil without a mark), or nil, err.  Its list and partial file are a job's scratch (verb_job.lua).
function M.join(paths, out, timeout, mark)
  local list, first, same = out .. ".film-list", nil, true
  local tmp, job = out .. ".film-part.mp4", require "starvideos.verb_job"
  job.scratch(list)
  job.scratch(tmp)
  local f = assert(io.open(list, "wb"))
  for i, p in ipairs(paths) do -- (by its name: concat reads a path against the list's folder, the shots' own)
    f:write("file ", shell.word((p:match("[^/]+$"))), "\n")
    local s = stream_of(p, timeout)
    if i == 1 then first = s elseif s ~= first then same = false end
  end
  f:close()
  if job.cancelled() then
    os.remove(list)
    return nil, new_error("io", "the job was cancelled before the film was joined", { field = "out" })
  end
  local ok, said = run_cmd(lineage.timed(string_format("ffmpeg -v error -nostdin -y -f concat -safe 0 -i %s %s "
    .. "-movflags +faststart %s", shell.word(list), same and "-c copy" or "-c:v libx264 -pix_fmt yuv420p -c:a aac",
    shell.word(tmp)), timeout))
  os.remove(list)
  if not ok then
    os.remove(tmp)
    return nil, new_error("io", "film: ffmpeg could not join the shots: " .. said, { field = "out" })
  end
  local marked = require("starvideos.mark").append(tmp, mark) -- (true, or why not; nil: mark = false)
  local renamed, rerr = os.rename(tmp, out)
  if not renamed then
    os.remove(tmp)
    return nil, new_error("io", "film: cannot write " .. out .. ": " .. tostring(rerr), { field = "out" })
  end
  return true, same, marked
end

return M
