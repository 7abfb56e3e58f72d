-- A fallback that cannot pay twice (docs/failures.md#a-fallback-that-cannot-pay-twice): `fallback = {MODEL, ...}`
-- on generate (a film's new shots through it) and generate_all.  After a task of one model failed for `service`
-- or `unknown`, the next model is tried with the same parameters; never after a create whose answer was not seen
-- (its task may exist: it is followed, never replaced), never after `policy` or `input`, never after any other
-- error.  Every model is checked against its rules before the first create.  Each attempt is a generate of its
-- own: keyed (its key the call's, then KEY#fallback:MODEL), reserving against every spend limit as any create
-- does, recorded with parent (the attempt before) and relation = "fallback"; a rerun reads the ledger's tasks of
-- those keys, so that an attempt whose task failed before is not paid for again and one created is followed.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Create = require "starvideos.create"
local Failure = require "starvideos.failure"
local copy = require("starvideos.config").copy -- (a table's shallow copy)

local ipairs, tostring, string_format = ipairs, tostring, string.format
local new_error = errors.new_error

local M = {}

M.AFTER = { service = true, unknown = true } -- the reasons another model is tried after

-- nil, or the refusal of a model named twice in {params.model, fallback...} (the repeat: a second create of the
-- same model, paid for again, on the parameters that failed for it).
local function repeated(models)
  local at = {}
  for i, model in ipairs(models) do
    local first = at[model]
    if first then
      return new_error("invalid_request", string_format("fallback[%d] %s repeats %s: it would be created and paid "
        .. "for twice: nothing was sent", i - 1, model, first == 1 and "the call's own model"
        or string_format("fallback[%d]", first - 1)), { field = "fallback", model = model })
    end
    at[model] = i
  end
end

-- The attempts of params and the fallback models, each model's params checked against its rules before anything
-- is sent: {params, body}s, or nil, err naming the fallback that could never take them or a model named twice.
function M.attempts(params, fallback)
  local list, models = {}, { params.model }
  for _, m in ipairs(fallback) do models[#models + 1] = m end
  local rerr = type(params.model) == "string" and repeated(models)
  if rerr then return nil, rerr end
  for i, model in ipairs(models) do
    local p = copy(params)
    p.model = model
    local text, err = Create.extra_json(p)
    if err then return nil, err end
    local path, body = core.build_create(p, text)
    if not path and i == 1 then return nil, body end -- (the call's own params: as generate refuses them)
    if not path then
      return nil, new_error("invalid_request", string_format("fallback[%d] %s could never take these parameters (%s):"
        .. " nothing was sent", i - 1, model, tostring(body and body.message or body)), { field = "fallback" })
    end
    list[i] = { params = p, body = body }
  end
  return list
end

-- The key of a line's attempt i (base: its out's key, or its key; nil: none, nothing keyed): the base's, then
-- BASE#fallback:MODEL.
local function key_of(base, i, model)
  if not base or i == 1 then return base end
  return base .. "#fallback:" .. model
end

-- What the ledger holds of each key (a rerun's): key -> the latest task of it (client:tasks' rows; none without a
-- ledger).
local function held(client)
  local by = {}
  if not client.ledger.records then return by end
  for _, t in ipairs(client:tasks() or {}) do if t.key and t.id then by[t.key] = t end end
  return by
end

-- The failure of an attempt whose task, of the same body, failed in an earlier run (t: the ledger's row of its
-- key) for service or unknown: not paid for again; nil when it is to be run (one failed for policy or input: its
-- create is refused before sending, refusal.lua's).
local function failed_before(t, body, opts, cfg)
  if not (t and t.state == "failed" and t.body == body) or opts.fresh then return nil end
  if not M.AFTER[Failure.classify(t.error, cfg.failure_patterns)] then return nil end
  return new_error("task_failed", string_format("task %s failed: %s", t.id, tostring(t.error)),
    { task = { id = t.id, status = "failed", error = t.error, model = t.model }, id = t.id })
end

-- Whether err ends the fallback: anything but a task failed for service or unknown (err explained).
local function final(err, cfg)
  if err.kind ~= "task_failed" then return true end
  Failure.explain(err, cfg.failure_patterns)
  return not M.AFTER[err.reason]
end

-- After attempt i (of list) failed with err: true when the next is to be tried (told: an event `fallback`), else
-- false; err.attempts set.
local function next_one(cfg, list, i, err)
  err.attempts = i
  if final(err, cfg) or i == #list then return false end
  if cfg.on_event then cfg.on_event { type = "fallback", id = err.task and err.task.id, index = err.index,
    model = list[i + 1].params.model, reason = err.reason, message = string_format("task %s of %s failed (%s): "
      .. "trying %s", tostring(err.task and err.task.id), list[i].params.model, err.reason,
      list[i + 1].params.model) } end
  return true
end

local function without_fallback(opts)
  local o = copy(opts)
  o.fallback = nil
  return o
end

-- client:generate with opts.fallback: run(opts, spec) runs one generate (client.lua's).  Its task (with
-- parent and relation when a fallback made it), or nil, err (the last attempt's; err.attempts: how many were
-- tried, this call or a rerun).
function M.generate(client, params, opts, run)
  local list, err = M.attempts(params, opts.fallback)
  if not list then return nil, err end
  local by, parent, o = held(client), nil, without_fallback(opts)
  local base = opts.out and require("starvideos.sink").key(opts.out) or opts.key
  for i, a in ipairs(list) do
    local key = key_of(base, i, a.params.model)
    err = failed_before(by[key or false], a.body, opts, client.cfg)
    if not err then
      local task
      task, err = run(o, { params = a.params, attempt = key, parent = parent,
        relation = parent and "fallback" or nil })
      if task then
        if parent then task.parent, task.relation = parent, "fallback" end
        return task
      end
    end
    if not next_one(client.cfg, list, i, err) then return nil, err end
    parent = err.task and err.task.id
  end
end

-- Each line's file and key as generate_all names them (out: a pattern with one %d, or fn(i, params); key: fn).
local function names(list, opts)
  local paths, bases, Sink = {}, {}, require "starvideos.sink"
  for i, p in ipairs(list) do
    local out = opts.out
    paths[i] = out and (type(out) == "string" and string_format(out, i) or out(i, p)) or nil
    bases[i] = paths[i] and Sink.key(paths[i]) or opts.key and opts.key(i, p) or nil
  end
  return paths, bases
end

-- client:generate_all with opts.fallback: the lines run as a batch (batch.lua's run), then
-- those whose task failed for service or unknown run again as a batch of the next model, each line into its own
-- file, keyed KEY#fallback:MODEL, with parent and relation.  The results, in the order of list (a line whose
-- fallback could never take its params: its err, nothing sent for it).
function M.generate_all(client, list, opts)
  local results, todo, tries, parents = {}, {}, {}, {}
  local paths, bases = names(list, opts)
  for i, p in ipairs(list) do
    local a, err = M.attempts(p, opts.fallback)
    if a then tries[i], todo[#todo + 1] = a, i else err.index = i; results[i] = { err = err } end
  end
  local by = held(client)
  for r = 1, #opts.fallback + 1 do
    local sub, idx, o = {}, {}, without_fallback(opts)
    for _, i in ipairs(todo) do
      local a, key = tries[i][r], key_of(bases[i], r, tries[i][r].params.model)
      local err = failed_before(by[key or false], a.body, opts, client.cfg)
      if err then results[i] = { err = err } else sub[#sub + 1], idx[#idx + 1] = a.params, i end
    end
    o.out = opts.out and function(j) return paths[idx[j]] end
    o.key = opts.key and function(j) return bases[idx[j]] end
    o.attempt = function(j) return key_of(bases[idx[j]], r, sub[j].model) end
    o.parent = function(j) return parents[idx[j]] end
    for j, res in ipairs(sub[1] and require("starvideos.batch").run(client.ctx, sub, o) or {}) do
      results[idx[j]] = res
      if res.task and parents[idx[j]] then res.task.parent, res.task.relation = parents[idx[j]], "fallback" end
    end
    local left = {}
    for _, i in ipairs(todo) do
      local err = results[i].err
      if err then err.index = i end
      if err and next_one(client.cfg, tries[i], r, err) then left[#left + 1], parents[i] = i, err.task.id end
    end
    todo = left
  end
  return results
end

return M
