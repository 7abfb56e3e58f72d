-- A card's children (docs/studio.md): "again", "remix" and "continue" of a card of the browser's own, each one
-- create the library makes from the parent's task in the journal (client:again, client:remix, client:continue:
-- docs/lineage.md), run in a timer as a generate is (studio.runner); the library records `parent` and `relation`
-- in the journal, and the child's card names its parent's card.  A remix and a continue without a bucket (STUDIO_REFS)
-- are refused by the studio (M.refusal); what the library refuses (no ffmpeg, no last image, a parent not whole)
-- fails the child's card with its message; and nothing is sent.

local cjson = require "cjson.safe"
local cards = require "studio.cards"

local ipairs, pairs, type, tostring = ipairs, pairs, type, tostring

local M = {}

M.RELATIONS = { again = true, remix = true, continue = true }

-- The children that put a local file into the bucket for the service to fetch: what each puts there.
M.FILES = { remix = "the card's video", continue = "the card's last frame" }

-- What a child's body may hold: the parent card's key, the relation, a prompt, and a continue's end frame (a URL).
local TAKEN = { from = true, relation = true, prompt = true, last_image = true }

-- The child asked for by a browser's body ({from = the parent card's key, relation, prompt, last_image}) of tenant:
-- {how, parent (its card), params}; or nil, the HTTP status and why.
function M.request(tenant, body)
  local how = body.relation
  if not M.RELATIONS[how] then
    return nil, 400, 'relation: expected "again", "remix" or "continue", got ' .. tostring(how)
  end
  for k in pairs(body) do
    if not TAKEN[k] then return nil, 400, tostring(k) .. ": not taken by a card's " .. how end
  end
  local parent = type(body.from) == "string" and body.from:find("^%x+$") and cards.get(body.from)
  if not (parent and parent.tenant == tenant) then return nil, 404, "from: no such card" end
  if not parent.id then return nil, 409, "from: the card has no task yet: wait for its create to be answered" end
  local params = {}
  for _, k in ipairs { "prompt", "last_image" } do
    local v = body[k]
    if v ~= nil and v ~= "" and v ~= cjson.null then
      if type(v) ~= "string" then return nil, 400, k .. ": expected " .. (k == "prompt" and "text" or "a URL") end
      params[k] = v
    end
  end
  if how ~= "continue" and params.last_image then return nil, 400, "last_image: taken by a continue only" end
  return { how = how, parent = parent, params = params }
end

-- The refusal of the child req (as M.request made it) by a studio without a bucket (storage: STUDIO_REFS's option,
-- nil without it), or nil: a remix and a continue are refused before anything is sent, as docs/studio.md says
-- (the library alone would remix from the parent's video_url while it is valid, and pay).
function M.refusal(req, storage)
  local what = M.FILES[req.how]
  if not what or storage then return nil end
  return { kind = "invalid_request", field = "STUDIO_REFS", message = req.how .. ": " .. what .. " is put into your "
    .. "bucket for the service to fetch: start the studio with STUDIO_REFS=s3://bucket/prefix/ (docs/studio.md) "
    .. "(nothing was sent)" }
end

-- The create the journal recorded for task id (its params as sent), or an empty table.
local function recorded(c, id)
  local list = c:tasks {} or {}
  for _, e in ipairs(list) do
    if e.id == id then return type(e.body) == "string" and cjson.decode(e.body) or {} end
  end
  return {}
end

-- The params of the child of req with c: again's as given (the library takes the parent's create and changes
-- them); a remix's and a continue's prompt the parent's where none is given (each takes the parent's model,
-- duration, ratio and resolution itself).
function M.params(c, req)
  local p = req.params
  if req.how == "again" then return p end
  p.prompt = p.prompt or recorded(c, req.parent.id).prompt
  return p
end

-- The lineage fields of the card of a child (req, as M.request made it).
function M.fields(req)
  return { parent = req.parent.key, parent_id = req.parent.id, relation = req.how,
    prompt = req.params.prompt or req.parent.prompt }
end

-- The lineage fields of the card of an entry e of the journal, or nil: its parent's card, when the same tenant's.
function M.recorded_fields(e)
  if not (e.parent and e.relation) then return nil end
  local key = cards.key_of(e.parent)
  local parent = key and cards.get(key)
  return { parent = parent and parent.tenant == e.tenant and key or nil, parent_id = e.parent, relation = e.relation }
end

return M
