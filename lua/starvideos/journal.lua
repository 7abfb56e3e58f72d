-- The journal: a JSON-lines file recording every task this client paid for, so a
-- killed process loses nothing.  One line per event, appended and flushed before
-- the call that caused it returns:
--   {"event":"created","id":"...","model":"...","prompt":"...","time":1700000000}
--   {"event":"status","id":"...","status":"processing","time":...}
--   {"event":"downloaded","id":"...","path":"/videos/x.mp4","time":...}
-- Reading tolerates a torn last line (a crash mid-write) and unknown events.

local cjson = require("cjson.safe").new()

local io_open, os_time, ipairs, type = io.open, os.time, ipairs, type

local J = {}

-- append(path, record) -> true | nil, message
function J.append(path, rec)
  rec.time = rec.time or os_time()
  local line, jerr = cjson.encode(rec)
  if not line then return nil, "cannot encode a journal line: " .. tostring(jerr) end
  local f, err = io_open(path, "a+")
  if not f then return nil, "cannot open the journal: " .. tostring(err) end
  -- after a crash mid-write the last line is torn: end it, so that this record
  -- starts a line of its own instead of being glued to the broken one
  local size = f:seek("end")
  if size and size > 0 then
    f:seek("end", -1)
    if f:read(1) ~= "\n" then line = "\n" .. line end
  end
  local ok, werr = f:write(line, "\n")
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then return nil, "cannot write the journal " .. path .. ": " .. tostring(werr) end
  return true
end

-- read(path) -> list of tasks in the order they were created, each
-- {id=, model=, prompt=, status=, path=, created=}, plus a count of unreadable lines;
-- or nil, message when the file cannot be read.
function J.read(path)
  local f, err = io_open(path, "r")
  if not f then return nil, "cannot read the journal: " .. tostring(err) end
  local list, by_id, bad = {}, {}, 0
  for line in f:lines() do
    local rec = line ~= "" and cjson.decode(line)
    if type(rec) == "table" and type(rec.id) == "string" then
      local t = by_id[rec.id]
      if not t then
        t = { id = rec.id }
        by_id[rec.id] = t
        list[#list + 1] = t
      end
      if rec.event == "created" then
        t.model, t.prompt, t.created = rec.model, rec.prompt, rec.time
        t.status = t.status or "queued"
      elseif rec.event == "status" and type(rec.status) == "string" then
        t.status = rec.status
      elseif rec.event == "downloaded" and type(rec.path) == "string" then
        t.path = rec.path
      end
    elseif line ~= "" then
      bad = bad + 1 -- a torn or foreign line: skip it, keep the rest
    end
  end
  f:close()
  return list, bad
end

-- The tasks a resume must still carry to a file: not downloaded, not failed.
function J.unfinished(list)
  local out = {}
  for _, t in ipairs(list) do
    if not t.path and t.status ~= "failed" then out[#out + 1] = t end
  end
  return out
end

return J
