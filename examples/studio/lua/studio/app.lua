-- The studio's handlers (examples/studio/nginx.conf names them):
--   GET  /         the page, with this load's token in a meta tag (and the tenant's cookie)
--   GET  /models   starvideos.models as JSON: the picker's fields, limits and reference slots
--   GET  /tasks    the tenant's cards as JSON
--   POST /tasks    a task: validated here by the library (400 and its message: nothing sent),
--                  then generated in the background (202 and the card's key); a body with `from` (a card's key)
--                  and `relation` (again, remix, continue): a child of that card (studio.lineage)
--   GET  /events   the library's event stream of the tenant's tasks (client:sse: created, status, progress,
--                  warning, saved, failed, ...; a spend limit's step as a warning), on which the page asks /tasks
--                  and /spend again (at most 4 streams a browser, 128 in all: 429 past that)
--   GET  /spend    the tenant's spend panel as JSON ({"spend": null} without a spend limit)
-- guard.lua has checked the Host, the token and the tenant before any of these runs.

local starvideos = require "starvideos"
local cards = require "studio.cards"
local guard = require "studio.guard"
local lineage = require "studio.lineage"
local runner = require "studio.runner"
local spend = require "studio.spend"

local ngx = rawget(_G, "ngx")
local pairs, type, tonumber = pairs, type, tonumber

local M = {}

local page_text -- index.html, read once in the master

-- The studio's folder (journal, videos, secret) and the page's folder; in init_by_lua.
function M.init(dir, static)
  guard.init(dir .. "/secret")
  runner.init(dir)
  local f = assert(io.open(static .. "/index.html", "rb"))
  page_text = f:read("*a")
  f:close()
  assert(page_text:find("{{TOKEN}}", 1, true), "studio: index.html has no {{TOKEN}}")
end

-- In init_worker_by_lua: the first worker makes the cards again from the journal.
function M.init_worker()
  if ngx.worker.id() == 0 then assert(ngx.timer.at(0, runner.recover)) end
end

local function reply(status, body)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(body)
end

function M.page()
  local token = guard.token(guard.tenant_or_new())
  ngx.header.content_type = "text/html; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print((page_text:gsub("{{TOKEN}}", token)))
end

-- A plain copy of a read-only table (OpenResty's LuaJIT may honour __pairs, which cjson does not).
local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and copy(v) or v end
  return out
end

local models_json
function M.models()
  models_json = models_json or cards.encode(copy(starvideos.models))
  reply(200, models_json)
end

-- The reference fields: a browser names media by URL only, never a file of this server ({file = path})
-- nor `extra`.
local URLS = { first_image = "one", last_image = "one", image = "one", lastFrameImage = "one",
  referenceImages = "list", referenceVideos = "list", referenceAudios = "list" }

local function urls_only(p)
  if p.extra ~= nil then return "extra: not taken by the studio" end
  for field, how in pairs(URLS) do
    local v = p[field]
    if how == "one" and v ~= nil and type(v) ~= "string" then return field .. ": expected a URL" end
    if how == "list" and type(v) == "table" then
      for i, u in pairs(v) do
        if type(u) ~= "string" then return field .. "[" .. tostring(i) .. "]: expected a URL" end
      end
    end
  end
end

-- The request's params from its JSON body: empty values left out, a duration typed as text made a
-- number; anything else as sent, for the library's validation to name.  nil, why for a body refused here.
local function params_of(body)
  local p = type(body) == "table" and body or nil
  if not p then return nil, "expected a JSON object of params" end
  for k, v in pairs(p) do
    if v == "" or v == ngx.null or (type(v) == "table" and next(v) == nil) then p[k] = nil end
  end
  if type(p.duration) == "string" then p.duration = tonumber(p.duration) or p.duration end
  local why = urls_only(p)
  if why then return nil, why end
  return p
end

-- A card for params p (child: a child of a card, p its params), its task started: 202 and the card's key.
local function started(tenant, p, child)
  -- the card's key, and its video's name: a secret of this card, with no tenant's id in it
  local key, failed = runner.start(tenant, p, guard.fresh("card"):sub(1, 32), child)
  if not key then return reply(503, cards.encode { error = "cannot start: " .. tostring(failed) }) end
  reply(202, cards.encode { key = key })
end

local function create(tenant)
  ngx.req.read_body()
  local body = cards.decode(ngx.req.get_body_data() or "")
  if type(body) == "table" and body.from ~= nil then
    local child, status, why = lineage.request(tenant, body)
    if not child then return reply(status, cards.encode { error = why }) end
    return started(tenant, child.params, child)
  end
  local p, why = params_of(body)
  if not p then return reply(400, cards.encode { error = why }) end
  local ok, err = starvideos.validate(p)
  if not ok then return reply(400, cards.encode { error = err.message, field = err.field }) end
  started(tenant, p)
end

function M.tasks()
  local tenant = guard.tenant()
  if not tenant then return reply(403, '{"error":"no tenant: load the page first"}') end
  local method = ngx.req.get_method()
  if method == "POST" then return create(tenant) end
  if method ~= "GET" then return reply(405, '{"error":"GET or POST"}') end
  reply(200, cards.json(tenant))
end

-- The event streams open, the worker's own (the studio runs one worker): each holds a connection of
-- nginx's worker_connections (512) for as long as its browser stays, so a browser holds at most
-- STREAMS.tenant of them (a tab each) and all browsers together STREAMS.total, leaving the rest for pages.
M.STREAMS = { tenant = 4, total = 128 }
local open = { total = 0 }

-- 429 for a stream past a cap, its reason named, and the connection closed (not kept alive to be held).
local function too_many(why)
  ngx.status = 429
  ngx.header.content_type = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  local body = cards.encode { error = why }
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  ngx.flush(true)
  return ngx.exit(444)
end

-- GET /spend: the tenant's spend panel (studio.spend), null without a spend limit.
function M.spend()
  local tenant = guard.tenant()
  if not tenant then return reply(403, '{"error":"no tenant: load the page first"}') end
  local text, err = spend.panel(tenant)
  if not text then return reply(503, cards.encode { error = err }) end
  reply(200, text)
end

-- GET /events: the tenant's stream, counted while it runs (its end, whatever ends it, counted too).
function M.events()
  local tenant = guard.tenant()
  if not tenant then return reply(403, '{"error":"no tenant: load the page first"}') end
  local mine = open[tenant] or 0
  if mine >= M.STREAMS.tenant then
    return too_many(("at most %d event streams a browser: close a tab of the studio"):format(M.STREAMS.tenant))
  end
  if open.total >= M.STREAMS.total then
    return too_many(("at most %d event streams in all: the studio is busy"):format(M.STREAMS.total))
  end
  open[tenant], open.total = mine + 1, open.total + 1
  local c = runner.client()
  local ok, err = pcall(c.sse, c, { tenant = tenant }) -- (the library's stream of the tenant's tasks: client:sse)
  c:close()
  open.total = open.total - 1
  open[tenant] = open[tenant] > 1 and open[tenant] - 1 or nil
  if not ok then error(err, 0) end
end

return M
