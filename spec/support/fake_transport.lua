-- A scripted transport (the interface in lua/starvideos/transport.lua), for
-- the specs that drive job, request and schedule without a server:
--
--   local fake = require("spec.support.fake_transport").new(script)
--   local client = starvideos.new { api_key = "k", base_url = "http://api.test", transport = fake }
--
-- script(r, fake) is called when an exchange is sent, with the request r as
-- the client built it ({op, url, auth, body, fresh, timeout, max_body, file,
-- offset, follow, stall}) and says how it ends: a table
--   status, body, retry_after   an HTTP answer (read by core.verdict, as every
--                               transport's is)
--   tr, message                 or a wire ending ("timeout", "broken", ...)
--   video                       a download's bytes: written to r.file from
--                               r.offset on (or from 0 with `restart`), the
--                               answer a 200 (206 from an offset)
--   after                       seconds (real ones) before it finishes
-- Every exchange is kept in fake.sent, in order, with r, at (core.now() when
-- sent), done (when it finished), cancelled.  fake.open counts exchanges in
-- flight; fake.most the most there were at once.

local core = require "starvideos.core"

local now, verdict = core.now, core.verdict

local F = {}

function F.new(script)
  local t = { sent = {}, open = 0, most = 0, closed = false, commits = {} }
  local pending, finished = {}, {}

  local function live()
    if t.closed then error("the fake transport is closed", 3) end
  end

  -- The answer's effects, when it finishes: a download's bytes in its file.
  local function finish(x)
    local a = x.answer
    x.done = now()
    t.open = t.open - 1
    if x.r.op == "download" and a.video then
      local from = a.restart and 0 or (x.r.offset or 0)
      local f = assert(io.open(x.r.file, from > 0 and "r+b" or "wb"))
      f:seek("set", from)
      f:write(a.video:sub(from + 1))
      f:close()
      x.bytes, x.total = #a.video, #a.video
      x.status = a.status or (from > 0 and 206 or 200)
    end
    finished[#finished + 1] = x
  end

  function t.send(_, r)
    live()
    local copy = {}
    for k, v in pairs(r) do copy[k] = v end
    local a = script(copy, t)
    if a == nil then
      return nil, setmetatable({ kind = "network", message = "the script refused it" }, core.error_mt)
    end
    local x = { r = copy, answer = a, at = now(), bytes = copy.offset or 0 }
    x.due = x.at + (a.after or 0)
    t.sent[#t.sent + 1] = x
    t.open = t.open + 1
    if t.open > t.most then t.most = t.open end
    pending[#pending + 1] = x
    return x
  end

  function t.poll(_, max_wait)
    live()
    local until_ = now() + (max_wait or 0)
    repeat
      local keep, soonest = {}, nil
      for _, x in ipairs(pending) do
        if x.due <= now() then finish(x) else
          keep[#keep + 1] = x
          soonest = math.min(soonest or x.due, x.due)
        end
      end
      pending = keep
      if #finished > 0 or not soonest or now() >= until_ then break end
      core.sleep(math.max(0, math.min(soonest, until_) - now()))
    until false
    return #finished
  end

  function t.finished()
    live()
    return table.remove(finished, 1)
  end

  function t.result(_, x)
    live()
    assert(x and x.done and not x.spent, "result of an exchange that did not finish, or twice")
    x.spent = true
    local a = x.answer
    return verdict(x.r.op, x.status or a.status or 0, a.body or "", a.retry_after, a.tr or "none", a.message,
      x.bytes, x.total)
  end

  function t.progress(_, x) return x.bytes, x.total end

  function t.cancel(_, x)
    if x.spent or x.done then x.spent = true; return end
    x.spent, x.cancelled = true, true
    t.open = t.open - 1
    for i, p in ipairs(pending) do
      if p == x then table.remove(pending, i); break end
    end
  end

  function t.commit(_, part, path)
    t.commits[#t.commits + 1] = { part = part, path = path }
    return core.commit(part, path)
  end

  function t.close()
    if t.closed then return end
    for _, x in ipairs(pending) do t:cancel(x) end
    t.closed = true
  end

  return t
end

-- The video a fake download serves: n bytes naming their own positions.
function F.video(n)
  local blocks = {}
  for i = 0, math.floor(n / 16) do blocks[#blocks + 1] = string.format("%08d|video|\n", i) end
  return table.concat(blocks):sub(1, n)
end

return F
