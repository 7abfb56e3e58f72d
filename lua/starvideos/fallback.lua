-- A fallback that cannot pay twice (docs/failures.md#a-fallback-that-cannot-pay-twice): `fallback = {MODEL, ...}`
-- on generate (and a film's shots, through it).  After a task of one model failed for `service` or `unknown`, the
-- next model is tried with the same parameters; never after a create whose answer was not seen (its task may
-- exist: it is followed, never replaced), never after `policy` or `input`, never after any other error.  Every
-- model is checked against its rules before the first create.  Each attempt is a generate of its own: keyed (its
-- key the call's, then KEY#fallback:MODEL), reserving against every spend limit as any create does, recorded with
-- parent (the attempt before) and relation = "fallback"; a rerun reads the ledger's tasks of those keys, so that
-- an attempt whose task failed before is not paid for again and one created is followed.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Create = require "starvideos.create"
local Failure = require "starvideos.failure"

local ipairs, pairs, tostring, string_format = ipairs, pairs, tostring, string.format
local new_error = errors.new_error

local M = {}

M.AFTER = { service = true, unknown = true } -- the reasons another model is tried after

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- The attempts of params and the fallback models, each model's params checked against its rules before anything
-- is sent: {params, body}s, or nil, err naming the fallback that could never take them.
function M.attempts(params, fallback)
  local list, models = {}, { params.model }
  for _, m in ipairs(fallback) do models[#models + 1] = m end
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

-- The key of attempt i (nil: none, nothing keyed) from the call's: its out's or its key.
local function key_of(opts, i, model)
  local base = opts.out and require("starvideos.sink").key(opts.out) or opts.key
  if not base or i == 1 then return nil end
  return base .. "#fallback:" .. model
end

-- What the ledger holds of each attempt's key (a rerun's): key -> the latest task of it, by its rows
-- (client:tasks; none without a ledger).
local function held(client)
  local by = {}
  if not client.ledger.records then return by end
  for _, t in ipairs(client:tasks() or {}) do if t.key and t.id then by[t.key] = t end end
  return by
end

-- Whether err ends the fallback: anything but a task failed for service or unknown (err explained).
local function final(err, cfg)
  if err.kind ~= "task_failed" then return true end
  Failure.explain(err, cfg.failure_patterns)
  return not M.AFTER[err.reason]
end

-- client:generate with opts.fallback: run(params, opts, spec) runs one generate (client.lua's).  Its task (with
-- parent and relation when a fallback made it), or nil, err (the last attempt's; err.attempts: how many were
-- tried, this call or a rerun).
function M.generate(client, params, opts, run)
  local list, err = M.attempts(params, opts.fallback)
  if not list then return nil, err end
  local by, parent = held(client), nil
  for i, a in ipairs(list) do
    local o = copy(opts)
    o.fallback = nil
    local key = key_of(opts, i, a.params.model)
    local t = by[key or (opts.out and require("starvideos.sink").key(opts.out)) or opts.key or false]
    if t and t.state == "failed" and t.body == a.body and not opts.fresh then -- (a rerun: failed before, not again)
      err = new_error("task_failed", string_format("task %s failed: %s", t.id, tostring(t.error)),
        { task = { id = t.id, status = "failed", error = t.error, model = t.model }, id = t.id })
    else
      local spec = { params = a.params, attempt = key, parent = i > 1 and parent or nil,
        relation = i > 1 and "fallback" or nil }
      local task
      task, err = run(a.params, o, spec)
      if task then
        if i > 1 then task.parent, task.relation = parent, "fallback" end
        return task
      end
    end
    err.attempts = i
    if final(err, client.cfg) or i == #list then return nil, err end
    parent = err.task and err.task.id
    if client.cfg.on_event then client.cfg.on_event { type = "fallback", id = parent, model = list[i + 1].params.model,
      reason = err.reason, message = string_format("task %s of %s failed (%s): trying %s", tostring(parent),
        a.params.model, err.reason, list[i + 1].params.model) } end
  end
end

return M
