-- A journal of `bytes` or more (spec/records/journal_spec.lua's "a journal of 80 MB",
-- bench/journal_read.lua): task i created (a prompt of 8 KB), completed in i
-- seconds and downloaded, of kind M.kind_of(i).  M.write(path, bytes) -> the
-- number of tasks written.
local M = {}

M.PROMPT = string.rep("a very long prompt about a cat on a surfboard; ", 170) -- 8 KB
local MODELS, DURATIONS = { "videos", "videos_fast" }, { 5, 10 }

-- task i's model and duration
function M.kind_of(i) return MODELS[i % 2 + 1], DURATIONS[math.floor(i / 2) % 2 + 1] end

function M.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  local size, i = 0, 0
  while size < bytes do
    i = i + 1
    local model, duration = M.kind_of(i)
    local lines = string.format('{"event":"pending","local":"l%d","model":"%s","prompt_hash":"0123456789abcdef",'
      .. '"time":1700000000}\n{"event":"created","local":"l%d","id":"video_%d","model":"%s","duration":%d,'
      .. '"prompt":"%d %s","time":1700000001}\n{"event":"status","id":"video_%d","status":"completed","took":%d,'
      .. '"within":2.5,"time":1700000100}\n{"event":"downloaded","id":"video_%d","path":"/videos/video_%d.mp4",'
      .. '"time":1700000101}\n', i, model, i, i, model, duration, i, M.PROMPT, i, i, i, i)
    f:write(lines)
    size = size + #lines
  end
  assert(f:close())
  return i
end

return M
