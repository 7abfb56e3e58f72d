-- What a key's jobs told (job.lua's created, status, progress, warning, late, taken, saved, failed), kept for the
-- event streams (client:sse: sse.lua) in the key's window: a bounded list of numbered events, inside nginx in the
-- shared dict `starvideos_events` (every worker numbers from one counter there, so that an id means the same event
-- in any worker, and a worker killed loses none of it), else in the process's memory (the key's part); a journal's
-- and a store's keep their own (records/events.lua, the store's rock).  Every client records into it from its
-- first job; the stream served from it is loaded at the first client:sse.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local cjson = require("cjson.safe").new()

local tostring, type, pairs, ipairs = tostring, type, pairs, ipairs
local DEFAULTS = config.DEFAULTS

local E = {}

-- The event types a stream carries: the task's (job.lua tells these to the window).
E.TYPES = { created = true, status = true, progress = true, warning = true, late = true, taken = true,
  saved = true, failed = true }

E.GAP_WAIT = 1 -- seconds a reader waits for an event numbered but not yet kept (its worker between the two) at most

-- A text as a stream carries it: no place of the server's (a stream goes to whoever may read it, as the studio's
-- page does): a URL's user:password@ left out, and each absolute path (a journal's, an out's, a folder's: one that
-- begins a text or follows a space, a quote, "(" or "=") as its base name.
local function public(text)
  if not text:find("/", 1, true) then return text end -- (no path and no URL: most of an event's texts, as they are)
  text = text:gsub("(%a[%w+.-]*://)[^/%s]*@", "%1")
  return (text:gsub("()(/[^%s\"'`,;:()]*)", function(at, path)
    if at > 1 and not text:sub(at - 1, at - 1):find("[%s\"'`(=]") then return nil end
    return path:match("([^/]+)/*$") or path
  end))
end
E.public = public

-- A file an event names (a saved one's path, an out): a file on the server's disk by its name alone (no folder); an
-- object's URL (s3://bucket/key: where the reader finds the video) without its user:password and its query (a
-- signed URL's signature).
local NAMES = { path = true, out = true }
local function named(v)
  if v:find("^%a[%w+.-]*://") then return public((v:gsub("[?#].*$", ""))) end
  return v:match("([^/]+)/*$") or ""
end

-- A value of an event as a stream carries it: every text public (tables to a few levels), functions and userdata
-- left out.
local function carried(v, depth)
  if type(v) == "string" then return public(v) end
  if type(v) ~= "table" then return v end
  if depth > 4 then return nil end
  local out = {}
  for k, x in pairs(v) do
    if type(x) ~= "function" and type(x) ~= "userdata" then out[k] = carried(x, depth + 1) end
  end
  return out
end

-- The event as its stream's data: its fields but the service's whole task (`task`: its video_url is the key's),
-- each text public (a file it names by its name alone).
local ERROR = { "message", "kind", "reason", "field", "status", "request_id", "server_request_id" }
local function data_of(ev)
  local out = {}
  for k, v in pairs(ev) do
    if k ~= "task" and k ~= "error" and type(v) ~= "function" and type(v) ~= "userdata" then
      out[k] = NAMES[k] and type(v) == "string" and named(v) or carried(v, 1)
    end
  end
  if type(ev.error) == "table" then -- (a failed task's error: its words, not its task)
    out.error = {}
    for _, k in ipairs(ERROR) do out.error[k] = carried(ev.error[k], 1) end
  elseif ev.error ~= nil then
    out.error = carried(ev.error, 1)
  end
  return cjson.encode(out) or cjson.encode { type = ev.type, id = ev.id }
end

-- An entry of a window: tenant, task id, type and data, one text (tenants have no control characters: config.lua).
local SEP = "\31"
local function entry(ev, tenant)
  return (tenant or "") .. SEP .. (type(ev.id) == "string" and ev.id or "") .. SEP .. ev.type .. SEP .. data_of(ev)
end

function E.parse(text)
  local tenant, task, kind, data = text:match("^([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$")
  return tenant, task, kind, data
end

-- A window's first id less one: its start's microsecond on the wall clock (past the last id this process gave),
-- so that the ids of a window made again (a process or nginx started again, the dict emptied, even within the same
-- second; a key's last client closed and a new one made) come after every id of the one before, and a reader that
-- comes back with an id of that one gets the new window whole, not nothing until the count passes its id.  (Its
-- second's 10^6 made them equal in one second: 6 events each, both windows ...0001 to ...0006.)
local given = 0 -- the last id this process's windows gave
local function base() return math.max(math.floor(core.wall() * 1000000), given) end
-- An id as text: its digits (LuaJIT's tostring of a number past 10^14 would round it: 1.7958661234568e+15).
local function digits(id) return string.format("%d", id) end
E.digits = digits

-- The process's window: a ring of `size` entries.
local Memory = {}
Memory.__index = Memory

function Memory.new(size)
  local b = base()
  return setmetatable({ n = b, base = b, size = size, list = {} }, Memory)
end

function Memory:put(text)
  local n = self.n + 1
  self.n, self.list[n], self.list[n - self.size] = n, text, nil
  if n > given then given = n end
  return n
end

function Memory:last() return self.n end
function Memory:get(id) return self.list[id] end
function Memory:first() return math.max(self.base + 1, self.n - self.size + 1) end

-- nginx's dict: `<prefix>n` the last id given (incr: atomic across workers), `<prefix><id>` each entry; the entry
-- `size` older than a new one is deleted as it is kept.  Every write a safe_ one: a full dict refuses an event
-- (logged) rather than evicting another key's.
local Dict = {}
Dict.__index = Dict

function Dict.new(dict, name, size)
  return setmetatable({ dict = dict, prefix = "sse:" .. core.hash(name) .. ":", size = size }, Dict)
end

function Dict:put(text)
  local dict, counter = self.dict, self.prefix .. "n"
  local n, err = dict:incr(counter, 1)
  if not n and err == "not found" then -- (the window made: its base kept first, then the counter from it)
    local b = base()
    local ok, aerr = dict:safe_add(self.prefix .. "base", b)
    if ok or aerr == "exists" then ok, aerr = dict:safe_add(counter, dict:get(self.prefix .. "base") or b) end
    if ok or aerr == "exists" then n, err = dict:incr(counter, 1) end
  end
  if not n then return nil, err end
  if n > given then given = n end
  dict:delete(self.prefix .. digits(n - self.size))
  local ok, serr = dict:safe_set(self.prefix .. digits(n), text)
  if not ok then return nil, serr end
  return n
end

function Dict:last() return self.dict:get(self.prefix .. "n") or 0 end
function Dict:get(id) return self.dict:get(self.prefix .. digits(id)) end
function Dict:first() return math.max((self.dict:get(self.prefix .. "base") or 0) + 1, self:last() - self.size + 1) end

-- The window of key k (key.lua) for a client's ledger (its events method): a store's (the ledger point's rock: a
-- Redis stream every host of the store writes and reads); inside nginx the dict's (when declared: every worker's);
-- a journal's (its sibling file <journal>.events, every process of the journal's: records/events.lua); else the
-- process's.
function E.window(k, ledger)
  local ngx = config.nginx()
  local dict = ngx and ngx.shared and ngx.shared[DEFAULTS.events_dict]
  local own = ledger and ledger.events and (ledger.field == "store" or not dict) and
    ledger:events(k, DEFAULTS.events_window)
  if own then return own end
  return k:part("sse", function()
    if dict then return Dict.new(dict, k.name, DEFAULTS.events_window) end
    return Memory.new(DEFAULTS.events_window)
  end)
end

-- What a client's jobs told its window, written (its close: a journal's lines, a store's adds); 5 s at most.
function E.flush(k, ledger)
  local w = E.window(k, ledger)
  if w.flush then w:flush(5) end
end

-- The recorder a client hands its jobs (cfg.on_stream, job.lua): each of their events of a stream's types kept.
function E.recorder(window)
  return function(ev, tenant)
    if not E.TYPES[ev.type] then return end
    local ok, err = window:put(entry(ev, tenant))
    local ngx = not ok and config.nginx()
    if ngx then ngx.log(ngx.WARN, "starvideos: an event is not kept for the event streams: ", tostring(err)) end
  end
end

-- A call refused before it made a job (again, remix, continue: lineage.lua's refusal before paying): its `failed`
-- event told as a job's is (on_event, the key's streams, with the call's tenant); err returned.
function E.refused(cfg, err, tenant)
  local ev = { type = "failed", error = err }
  if cfg.on_event then cfg.on_event(ev) end
  if cfg.on_stream then cfg.on_stream(ev, tenant) end
  return err
end

-- The entries of a numbered window (the process's, nginx's dict: ids one apart) past seen: {id, text} pairs; a
-- number given but not kept yet (its writer between the counter and the entry) ends the read there for E.GAP_WAIT at
-- most (who.gap: when the reader who first met it).  A seen past the newest id: none, and the newest (from now on).
local function numbered(w, seen, t, who)
  local out, last = {}, w:last()
  if seen > last then return out, last end
  local id = math.max(seen + 1, w:first())
  while id <= last do
    local text = w:get(id)
    if not text then
      who.gap = who.gap or t
      if t - who.gap < E.GAP_WAIT then break end
    else
      out[#out + 1] = { id, text }
    end
    who.gap, id = nil, id + 1
  end
  return out, id - 1
end
Memory.since, Dict.since = numbered, numbered

return E
