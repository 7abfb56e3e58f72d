-- The studio's work in the background: each task generated in a timer
-- (ngx.timer.at: the request that asked answers at once), its card moved by the
-- library's events; and, when nginx starts, the cards made again from the journal
-- and every unfinished task carried to its file (client:resume): a restart pays
-- nothing again, since each create was keyed and recorded before it was sent.
-- Settings come from nginx's environment (the `env` lines of nginx.conf):
--   STUDIO_TENANT_LIMIT  "N/S": at most N creates of one browser in any S seconds
--   STUDIO_PRICES        "videos=0.40,videos_fast=0.25": each card's cost
--   STUDIO_INTERVAL      seconds between polls (tools/studio.sh: 1 on the emulator),
--                        else the library's learned schedule
--   STUDIO_SPEND_LIMIT   the library's spend_limit as JSON ({"amount": 5, "per": "day"}, or a list):
--                        STUDIO_PRICES must then price every model a limit covers
--   STUDIO_TZ_OFFSET     the library's tz_offset (hours, 5.5, or "+05:30"): the limits' calendar
--   STUDIO_REFS          the library's storage.refs (s3://bucket/prefix/): where a remix's video and a continue's
--                        frame are put for the service to fetch; the store's endpoint and keys from AWS_*

local starvideos = require "starvideos"
local config = require "starvideos.config"
local cjson = require "cjson.safe"
local cards = require "studio.cards"
local lineage = require "studio.lineage"

local ngx = rawget(_G, "ngx")
local ipairs, pairs, tonumber, type = ipairs, pairs, tonumber, type
local math_ceil = math.ceil

local M = {}

local conf = {}

-- STUDIO_TENANT_LIMIT's value as the library's option, or nil; raises naming a bad one.
local function tenant_limit(text)
  if not text or text == "" then return nil end
  local n, per = text:match("^(%d+)/(%d+%.?%d*)$")
  assert(n, "studio: STUDIO_TENANT_LIMIT: expected N/SECONDS (3/60: 3 creates a minute), got " .. text)
  return { count = tonumber(n), per = tonumber(per) }
end

-- STUDIO_PRICES's value as the library's `prices`, or nil; raises naming a bad one.
local function prices(text)
  if not text or text == "" then return nil end
  local t = {}
  for item in text:gmatch("[^,]+") do
    local model, price = item:match("^%s*([%w_]+)%s*=%s*(%d+%.?%d*)%s*$")
    assert(model and starvideos.models[model], "studio: STUDIO_PRICES: expected model=price,..., got " .. item)
    t[model] = tonumber(price)
  end
  return t
end

-- STUDIO_SPEND_LIMIT's JSON as the library's spend_limit, or nil; raises naming a text that is not JSON (the
-- library names what is wrong in a limit: M.init).
local function spend_limit(text)
  if not text or text == "" then return nil end
  local v, err = cjson.decode(text)
  assert(type(v) == "table", "studio: STUDIO_SPEND_LIMIT: expected a limit as JSON ({\"amount\": 5, \"per\": "
    .. "\"day\"}) or a list of them, got " .. text .. (err and " (" .. err .. ")" or ""))
  return v
end

-- STUDIO_REFS's value as the library's storage option, or nil; raises naming a bad one.
local function storage(text)
  if not text or text == "" then return nil end
  assert(text:find("^s3://[%w][%w.-]*/"), "studio: STUDIO_REFS: expected s3://bucket/prefix/, got " .. text)
  return { refs = text }
end

-- A client of the studio's settings (the journal, prices, limits): each task's, the event streams', the spend
-- panels'.
function M.client()
  return starvideos.new { journal = conf.journal, prices = conf.prices, tenant_limit = conf.tenant_limit,
    spend_limit = conf.spend_limit, tz_offset = conf.tz_offset, storage = conf.storage }
end
local client = M.client

-- Whether the studio's client has a spend limit (the page then shows its spend panel).
function M.spending() return conf.spend_limit ~= nil end

-- The settings, read once in the master (init_by_lua): dir is the studio's folder.  A spend limit the library
-- refuses (a wrong shape, a model STUDIO_PRICES does not price) stops nginx with the library's message.
function M.init(dir, env)
  env = env or os.getenv
  conf.journal = dir .. "/tasks.jsonl"
  conf.videos = dir .. "/videos"
  conf.tenant_limit = tenant_limit(env("STUDIO_TENANT_LIMIT"))
  conf.prices = prices(env("STUDIO_PRICES"))
  conf.interval = tonumber(env("STUDIO_INTERVAL") or "")
  conf.spend_limit = spend_limit(env("STUDIO_SPEND_LIMIT"))
  local tz = env("STUDIO_TZ_OFFSET")
  conf.tz_offset = tz and tz ~= "" and (tonumber(tz) or tz) or nil
  conf.storage = storage(env("STUDIO_REFS"))
  -- (the options as starvideos.new checks them: no client is made in nginx's init phase)
  local ok, err = pcall(config.client, { prices = conf.prices, spend_limit = conf.spend_limit,
    tz_offset = conf.tz_offset, storage = conf.storage })
  if not ok then error("studio: STUDIO_SPEND_LIMIT, STUDIO_PRICES or STUDIO_TZ_OFFSET: " .. tostring(err), 0) end
end

-- The card's fields for one of the library's events.
local function card_fields(ev)
  if ev.type == "status" then
    local eta = type(ev.eta) == "table" and ev.eta.p50 and math_ceil(ev.eta.p50) or false
    return { id = ev.id, status = ev.status, eta = eta,
      state = ev.status == "completed" and "downloading" or ev.status }
  elseif ev.type == "progress" then
    return { state = "downloading", bytes = ev.bytes, total = ev.total or false }
  end
end

local function basename(path)
  return path and path:match("([^/]+)$")
end

-- A spend limit's refusal (the library's message) as tenant's browser reads it: its tenant (the browser's id, a
-- hash) named as its spend panel names it, "you (this browser)", and where it was counted (the journal's path on
-- the server) left out.
function M.for_browser(message, tenant, journal)
  local i, j = message:find(string.format("spent of tenant %q", tostring(tenant)), 1, true)
  if i then message = message:sub(1, i - 1) .. "spent by you (this browser)" .. message:sub(j + 1) end
  i, j = message:find(", counted in the journal " .. tostring(journal), 1, true)
  if i then message = message:sub(1, i - 1) .. message:sub(j + 1) end
  return message
end

-- A failure's reason on a card (failure.lua's: err.reason, a journal entry's reason), the input its words named
-- and what to do; nil without one.
function M.why(reason, input)
  if not reason then return nil end
  return { reason = reason, input = input or false, advice = require("starvideos.failure").advice(reason, input) }
end

-- The errors of a create that was not sent: its card shows no cost.
local UNPAID = { spend_limited = true, invalid_request = true, refused_before = true }

-- The card of key (tenant's) once its task ended: the saved video, or the error.
local function finish(key, tenant, task, err, path)
  if task then
    return cards.update(key, { state = "saved", status = "completed", id = task.id, eta = false,
      video = "/videos/" .. basename(path or task.path) })
  end
  -- (a create a spend limit refused, one the library or the service found invalid, or one whose content the service
  -- refused before, cost nothing)
  local fields = { state = "failed", id = err.id or false, eta = false, error = err.message, kind = err.kind,
    request_id = err.request_id or false, server_request_id = err.server_request_id or false }
  if err.kind == "spend_limited" then fields.error = M.for_browser(err.message, tenant, conf.journal) end
  if UNPAID[err.kind] then fields.cost = false end
  for k, v in pairs(M.why(err.reason, err.input) or {}) do fields[k] = v end
  cards.update(key, fields)
end

-- The on_event of a client whose task's end (the library's saved or failed event) moves the card of key_of(id) at
-- once: before the event streams are told of it (the page then reads the card as the event says).
local function on_end(key_of, tenant)
  return function(ev)
    local key = (ev.type == "saved" or ev.type == "failed") and key_of(ev.id)
    if ev.type == "saved" and key then finish(key, tenant, { id = ev.id, path = ev.path }) end
    if ev.type == "failed" and key then finish(key, tenant, nil, ev.error) end
  end
end

-- A generate of params, or (child: studio.lineage's request) a child of a card's task, for key's card.
local function run(premature, key, tenant, params, child)
  if premature then return end -- nginx stops: the journal has what was created, the next start resumes it
  local refused = child and lineage.refusal(child, conf.storage)
  if refused then return finish(key, tenant, nil, refused) end
  local c = client()
  c.on_event = on_end(function() return key end, tenant)
  local warnings = {} -- (what the service will ignore of params, each said once before the create is sent)
  -- the out is the create's key in the journal: a rerun of it returns its task, never pays again
  local opts = { out = conf.videos .. "/" .. key .. ".mp4", tenant = tenant, interval = conf.interval,
    timeout = 3600, on_progress = function(ev)
      local fields = card_fields(ev)
      if ev.type == "warning" and ev.because then
        warnings[#warnings + 1] = ev.message
        fields = { warnings = warnings }
      end
      if fields then cards.update(key, fields) end
    end }
  local task, err
  if child then task, err = c[child.how](c, child.parent.id, lineage.params(c, child), opts)
  else task, err = c:generate(params, opts) end
  c:close()
  finish(key, tenant, task, err)
end

-- A card for params (validated) of tenant, under key (the browser's name of the card and of its video:
-- unguessable, and no tenant's id in it), and its generate in a timer: the key, or nil, err.  child: a child of
-- a card (studio.lineage's request; params its params), made by the library from the parent's task.
function M.start(tenant, params, key, child)
  assert(type(key) == "string" and key:find("^%x+$"), "studio: a card's key: expected hex digits")
  local model = params.model or child and child.parent.model
  local card = { key = key, tenant = tenant, model = model, prompt = params.prompt, state = "creating",
    created = ngx.time(), cost = conf.prices and conf.prices[model] }
  for k, v in pairs(child and lineage.fields(child) or {}) do card[k] = v end
  cards.add(card)
  local ok, err = ngx.timer.at(0, run, key, tenant, params, child)
  if not ok then
    cards.update(key, { state = "failed", error = "the studio cannot start it: " .. tostring(err) })
    return nil, err
  end
  return key
end

-- The card of one entry of the journal (client:tasks), for its tenant.
local function card_of(e)
  local card = { key = basename(e.out or e.key):gsub("%.mp4$", ""), tenant = e.tenant, id = e.id, model = e.model,
    prompt = e.prompt, status = e.status, cost = e.cost, created = e.created_at, state = "resuming" }
  for k, v in pairs(lineage.recorded_fields(e) or {}) do card[k] = v end
  if e.state == "downloaded" then
    card.state, card.video, card.bytes = "saved", "/videos/" .. basename(e.path), e.bytes
  elseif e.state == "failed" or e.state == "abandoned" then
    card.state = "failed"
    card.error = type(e.error) == "table" and (e.error.message or e.error.code) or e.error or e.state
    for k, v in pairs(M.why(e.reason, e.input) or {}) do card[k] = v end
  elseif e.state == "pending" then
    card.state, card.error = "failed", "its create was sent and never answered: starvideos pending names it"
  end
  return card
end

local function resume(c)
  c.on_event = on_end(cards.key_of) -- (a resume creates nothing: no refusal to name for a tenant)
  local results = c:resume { dir = conf.videos, interval = conf.interval, on_progress = function(ev)
    local key, fields = cards.key_of(ev.id), card_fields(ev)
    if key and fields then cards.update(key, fields) end
  end }
  for _, r in ipairs(results or {}) do
    local id = r.task and r.task.id or r.err and r.err.id
    local key = cards.key_of(id)
    if key then finish(key, nil, not r.err and r.task, r.err, r.path) end -- (a resume creates nothing: no refusal)
  end
end

-- When nginx starts (init_worker's timer): the cards from the journal, then its unfinished tasks resumed.
function M.recover(premature)
  if premature then return end
  local c = client()
  local list, err = c:tasks {}
  if not list then
    ngx.log(ngx.ERR, "studio: the journal cannot be read: ", err.message)
    return c:close()
  end
  local unfinished = false
  for _, e in ipairs(list) do
    if (e.out or e.key) and e.tenant then
      local card = card_of(e)
      cards.add(card)
      unfinished = unfinished or card.state == "resuming"
    end
  end
  if unfinished then resume(c) end
  c:close()
end

return M
