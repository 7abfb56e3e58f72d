-- The ledgers' rules (docs/architecture.md, "The ledger interface"): what both ledgers share, whatever holds
-- their records (records/ledger.lua on a journal or nothing, fleet/ledger.lua on a store), owned by neither:
-- what a pending and a created record hold, what a key's answer is, create_limit's refusal and the limits a
-- create counts against, what a settled create is (a failed one, or a pending one settled by hand) and its cost.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local errors = require "starvideos.errors"
local Sink = require "starvideos.sink"
local cjson = require("cjson.safe").new()

local type, ipairs, pairs, tostring, table_sort, table_concat = type, ipairs, pairs, tostring, table.sort, table.concat
local string_format, os_time, os_date, math_floor = string.format, os.time, os.date, math.floor
local new_error = errors.new_error

local R = {}

-- The first DEFAULTS.prompt_head characters (UTF-8) of a prompt, as records and lists keep it.
function R.head(prompt)
  if type(prompt) ~= "string" then return nil end
  local n, head = 0, config.DEFAULTS.prompt_head
  for i in prompt:gmatch("()[^\128-\191]") do -- where a character starts
    n = n + 1
    if n > head then return prompt:sub(1, i - 1) end
  end
  return prompt
end

-- What differs between two create bodies (JSON texts), "duration 5 there, 10 here; ...".
function R.differ(there, here)
  local a, b = cjson.decode(there or "") or {}, cjson.decode(here or "") or {}
  local names, seen = {}, {}
  for _, t in ipairs { a, b } do
    for k in pairs(t) do
      if not seen[k] and cjson.encode(a[k]) ~= cjson.encode(b[k]) then
        names[#names + 1] = string_format("%s %s there, %s here", k, cjson.encode(a[k]), cjson.encode(b[k]))
      end
      seen[k] = true
    end
  end
  table_sort(names) -- (by name: each begins with its name and a space)
  return names[1] and table_concat(names, "; ") or "the request was not recorded"
end

-- What a pending record holds: the create lid of params (to out, as Sink.recorded; want, a keyed job's: key, fp,
-- body) for tenant (nil: nobody named).  Each ledger adds its owner and time.
-- want's parent and relation: the task it builds on (lineage.lua's again, remix, continue); addr: the create's content
-- address (refusal.lua's), carried to its task's record.
function R.pending(params, lid, out, want, tenant, addr)
  local w = want or {}
  return { ["local"] = lid, model = params.model, out = Sink.recorded(out), tenant = tenant, key = w.key, fp = w.fp,
    body = w.body, prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil,
    prompt = R.head(params.prompt), parent = w.parent, relation = w.relation, addr = addr }
end

-- The create's JSON body of (valid) params, as it was sent: what `again` makes anew; nil when they are not whole
-- (a pending create adopted by hand: its model and prompt).
function R.body_of(params)
  local extra = params.extra ~= nil and cjson.encode(params.extra) or nil
  local ok, _, body = pcall(core.build_create, params, extra)
  return ok and type(body) == "string" and body or nil
end

-- The price of a create of model (prices), counted in the cost counter of a client that measures (its hook
-- cfg.observe, observe/observer.lua): the cost recorded with its task, or nil (unknown).
function R.cost(cfg, model)
  local price = cfg.prices and cfg.prices[model]
  if price and cfg.observe then cfg.observe:cost(model, price) end
  return price
end

-- What a task of model known failed at the service costs (failed_prices), or nil: its price stands (none given:
-- the service's documents do not say that a failure is not billed).
function R.failed_cost(cfg, model)
  local p = cfg.failed_prices and cfg.failed_prices[model]
  return type(p) == "number" and p or nil
end

-- What a created record holds: task id made by the create lid of params, p its pending record (R.pending's:
-- out, key, fp, body, tenant, addr; nil: none), uncertain when only a failed create's answer named it, its cost, and
-- the create's request ids (ids: request_id, server_request_id; a journal's, nil: none).
function R.created(cfg, id, params, lid, p, uncertain, ids)
  p, ids = p or {}, ids or {}
  return { id = id, ["local"] = lid, model = params.model, duration = params.duration, resolution = params.resolution,
    prompt = params.prompt, uncertain = uncertain or nil, out = p.out, key = p.key, fp = p.fp,
    body = p.body or R.body_of(params), tenant = p.tenant, cost = R.cost(cfg, params.model),
    request_id = ids.request_id, server_request_id = ids.server_request_id, parent = p.parent, relation = p.relation,
    addr = p.addr }
end

-- Whether a task's status, its failure's reason (failure.lua's), keeps its content refused (refusal.lua's KEPT): the
-- rule of both ledgers, whoever learned the status (the job that made the task, resume, keep, wait, a query).
function R.kept(status, reason)
  return status == "failed" and require("starvideos.refusal").KEPT[reason] == true
end

-- What before_create kept of the create lid (ledger.outs: its pending record), taken.
function R.taken(ledger, lid)
  local p = lid and ledger.outs[lid]
  if lid then ledger.outs[lid] = nil end
  return p
end


-- create_limit's refusal (tenant: tenant_limit's, for that tenant), whoever counted (store: its name, when a
-- store did).
function R.limited(limit, n, wait, store, tenant)
  local field = tenant and "tenant_limit" or "create_limit"
  return nil, new_error("rate_limited", string_format("%s: %d creates%s in the last %.14g s (at most %d%s):"
    .. " the next create is allowed in %d s (at %s)", field, n, tenant and string_format(" of tenant %q", tenant)
    or "", limit.per, limit.count, store and ", counted in the store " .. store or "", math_floor(wait + 0.999),
    os_date("!%Y-%m-%d %H:%M:%S UTC", math_floor(os_time() + wait + 0.999))),
    { field = field, retry_after = wait, tenant = tenant })
end

-- The limits a create of tenant (nil: none) is counted against: {lim, name ("" the key's, else the tenant)}s.
function R.limits(cfg, tenant)
  local list = {}
  if cfg.create_limit then list[1] = { lim = cfg.create_limit, name = "" } end
  if tenant and cfg.tenant_limit then list[#list + 1] = { lim = cfg.tenant_limit, name = tenant, tenant = tenant } end
  return list
end

-- Whether the key's task recorded holds out whole (taken as whole once recorded: looking would take a request).
local function whole(e, want)
  return e.bytes ~= nil and want.out ~= nil and (Sink.object(want.out) and e.path == want.out
    or require("starvideos.download").check { path = want.out, bytes = e.bytes, sha256 = e.sha256 } == "ok")
end

-- What a keyed create does, given e, what the ledger holds of its key (nil: nothing; {gone = true}: its create
-- surely made nothing; {failed = id}: its task failed; else a create unanswered or a task, e.alive: a live process
-- holds it) and `at` ("--journal PATH", "--store URL"): the task to follow, nil and why it creates ("new",
-- "fresh", "abandoned before", "failed before" and that task's id), or nil, err (refused: nothing is sent).  Of a
-- create and of a plan (batch.lua).
function R.key_answer(e, want, at)
  if want.fresh then return nil, "fresh" end
  if not e then return nil, "new" end
  if e.gone then return nil, "abandoned before" end
  if e.failed then return nil, "failed before", e.failed end
  local what = want.out and "out" or "key"
  if e.id == nil and e.alive then return nil, new_error("invalid_request", string_format("%s %s: another live process"
    .. " sent a create of it (pending record %s): rerun once it ends", what, want.key, e["local"]), { field = what })
  elseif e.id == nil then
    return nil, new_error("invalid_request", errors.hint(string_format("%s %s: a create of it was sent and its answer "
      .. "never came (pending record %s of %s): it may have been made and paid for; `starvideos pending %s` lists"
      .. " it; `starvideos pending %s --adopt %s TASK_ID` follows the task it made, once found in your account;"
      .. " `starvideos pending %s --forget %s` (or fresh = true) creates again", what, want.key,
      e["local"], os_date("!%Y-%m-%d %H:%M:%S UTC", e.time or 0), at, at, e["local"], at, e["local"])),
      { field = what, pending = e["local"] })
  end
  if e.fp ~= want.fp then
    return nil, new_error("invalid_request", string_format("%s %s belongs to task %s, made with other params (%s):"
      .. " give another %s, or fresh = true", what, want.key, e.id, R.differ(e.body, want.body), what),
      { field = what, id = e.id })
  end
  return { id = e.id, model = e.model, alive = e.alive, upload = e.upload, sha256 = e.sha256, whole = whole(e, want) }
end

-- The methods every ledger has the same way (docs/architecture.md, "The ledger"), given to class, made of its own
-- writes: own.record(self, id, params, lid, p, uncertain, ids, err) records a created task; own.abandon(self, lid)
-- settles a create that surely made nothing; own.settle(self, p, id) a pending create p settled by hand; own.where
-- (self) names the ledger ("the store URL", "--store URL").  The methods:
--   lapsed(id, part)   whether a keeper may have claimed task id since (then it asks first: confirm), by the
--                      numbers the ledger holds (self.fences, starvideos.lease's)
--   confirm(id, deadline, part)  a question on task id (its leases'), asked only when the process may no longer
--                      hold it when part is given (its lease not renewed for that part of a lease, or lapsed
--                      since), else nil
--   create_failed(err, params, lid)  a failed create settled: the task recorded (uncertain) when the answer named
--                      one, the create settled when it surely made nothing, else left pending
--   settle_pending(lid, id)  a pending create settled by hand (`starvideos pending --forget ID`: it made nothing
--                      worth keeping, its key creates again; `--adopt ID TASK_ID`: the task the user found it made,
--                      recorded created as its answer would have been, so that its key follows that task and a
--                      rerun pays for nothing again): id the task adopted, nil forgotten; its answer (true, or
--                      nil, why), or nil, why when there is none
function R.implement(class, own)
  function class.lapsed(self, id, part) return self.fences:lapsed(id, part) end
  function class.confirm(self, id, deadline, part)
    if part and not self:lapsed(id, part) then return nil end
    return self.leases:confirm(id, deadline)
  end
  function class.create_failed(self, err, params, lid)
    local p = R.taken(self, lid)
    if err.created and err.id then
      own.record(self, err.id, params, lid, p, true, nil, err) -- (the error's request ids, for the journal's)
    elseif not err.maybe_created then
      if lid then own.abandon(self, lid) end
    else
      err.pending = lid
    end
  end
  function class.settle_pending(self, lid, id)
    local list, err = self:pending()
    if not list then return nil, err end
    for _, p in ipairs(list) do
      if p["local"] == lid then return own.settle(self, p, id) end
    end
    local in_where, at = own.where(self)
    return nil, errors.hint(string_format("no pending create %s in %s (`starvideos pending %s` lists them)",
      tostring(lid), in_where, at))
  end
  return class
end

return R
