-- The studio's cards: one a task, kept in `lua_shared_dict studio` for every
-- request and timer of the worker to read (GET /tasks reads them there), and
-- made again from the journal when nginx starts (studio.runner.recover).
--   card:<key>   the card as JSON
--   list:<tenant> the tenant's card keys, oldest first, space-separated
--   id:<task id>  the key of the card of that task
--   video:<name>  the key of the card whose video is /videos/<name> (who may fetch it: cards.owner)
-- The studio runs one worker (nginx.conf): a read and the write after it are not
-- interleaved with another's, since nothing between them yields.

local cjson = require "cjson.safe"

local ngx = rawget(_G, "ngx")
local pairs, ipairs, type = pairs, ipairs, type

local json = cjson.new()

local M = {}

-- What a card holds (a child's also its parent's card key, its parent's task id and its relation: studio.lineage);
-- the rest of a task is never sent to the browser.
M.FIELDS = { "key", "id", "model", "prompt", "duration", "ratio", "state", "status", "eta", "bytes", "total",
  "cost", "error", "kind", "video", "created", "parent", "parent_id", "relation", "warnings", "request_id",
  "server_request_id", "reason", "input", "advice" }

local function dict() return ngx.shared.studio end

function M.get(key)
  local text = dict():get("card:" .. key)
  return text and json.decode(text)
end

-- Keep the card.
local function put(card)
  local text = json.encode(card)
  if text == dict():get("card:" .. card.key) then return end
  local ok, err = dict():safe_set("card:" .. card.key, text)
  if not ok then ngx.log(ngx.ERR, "studio: the card of ", card.key, " is not kept: ", err) end
  local video = type(card.video) == "string" and card.video:match("^/videos/(.+)$")
  if video then dict():safe_set("video:" .. video, card.key) end
end

-- A new card (its key, tenant and first fields), last of its tenant's list; an existing one is updated.
function M.add(card)
  if M.get(card.key) then return M.update(card.key, card) end
  local list = dict():get("list:" .. card.tenant)
  dict():safe_set("list:" .. card.tenant, list and (list .. " " .. card.key) or card.key)
  if card.id then dict():safe_set("id:" .. card.id, card.key) end
  put(card)
end

-- Merge fields into the card of key (false clears a field).
function M.update(key, fields)
  local card = M.get(key)
  if not card then return end
  for k, v in pairs(fields) do
    if v == false then card[k] = nil else card[k] = v end
  end
  if card.id then dict():safe_set("id:" .. card.id, key) end
  put(card)
end

-- The key of the card of task id, or nil.
function M.key_of(id)
  return id and dict():get("id:" .. id)
end

-- The tenant of the card whose video is /videos/<name>, or nil.
function M.owner(name)
  local key = dict():get("video:" .. name)
  local card = key and M.get(key)
  return card and card.video == "/videos/" .. name and card.tenant or nil
end

-- The tenant's cards, newest first, as the browser gets them.
function M.list(tenant)
  local out = {}
  for key in (dict():get("list:" .. tenant) or ""):gmatch("%S+") do
    local card = M.get(key)
    if card then
      local view = {}
      for _, f in ipairs(M.FIELDS) do view[f] = card[f] end
      table.insert(out, 1, view)
    end
  end
  return out
end

-- (Debian's cjson has no empty array: an empty list is written here)
function M.json(tenant)
  local list = M.list(tenant)
  return #list == 0 and '{"cards":[]}' or json.encode { cards = list }
end

M.encode = json.encode
M.decode = json.decode

return M
