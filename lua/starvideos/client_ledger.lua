-- The client's calls on its ledger (docs/reference.md): resume, keep, pending, tasks and spend, put on the client's
-- class by client.lua (begin: a call's options checked, as on a closed client).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local errors = require "starvideos.errors"

local new_error = errors.new_error

local M, begin = {}, nil

-- The ctx of a call on the ledger of opts.journal, else the client's: ctx, or nil, err.
local function ledger_ctx(self, opts, where)
  local path = opts.journal or self.journal
  if not (path or self.cfg.store) then return nil, new_error("invalid_request", where .. " needs a journal or a "
    .. "store: starvideos.new{journal=path} or starvideos.new{store=url}", { field = "journal" }) end
  if path == self.journal then return self.ctx end
  local ledger = require("starvideos.records.ledger").new(path, self.cfg, self.loop, self.key)
  return { loop = self.loop, key = self.key, ledger = ledger, cfg = self.cfg, deliveries = self.ctx.deliveries }
end

-- Carry every unfinished task of the ledger to a file.
function M.resume(self, opts)
  opts = begin(self, "resume", opts)
  local ctx, err = ledger_ctx(self, opts, "resume")
  if not ctx then return nil, err end
  local results, rerr = require("starvideos.extras.keep")[opts.dry_run and "plan" or "resume"](ctx, opts)
  return results, rerr -- not a tail call, as in run
end

-- Carry to a file every unfinished task whose owner let go of its lease.
function M.keep(self, opts)
  opts = begin(self, "keep", opts)
  local ctx, err = ledger_ctx(self, opts, "keep")
  if not ctx then return nil, err end
  if opts.dry_run then return require("starvideos.extras.keep").plan(ctx, opts, true) end
  return require("starvideos.extras.keep").run(ctx, opts, function() return not not self.loop end)
end

-- What the ledger of the call (where: pending or tasks, its method too) lists: the list, or nil, err.
local function listed(self, where, opts)
  local ctx, err = ledger_ctx(self, opts, where)
  if not ctx then return nil, err end
  local list, lerr = ctx.ledger[where](ctx.ledger)
  if not list then return nil, new_error("io", lerr, { field = ctx.ledger.field }) end
  return list
end

-- The creates whose answer never came (the task may exist).
function M.pending(self, opts) return listed(self, "pending", begin(self, "pending", opts)) end

-- The ledger's tasks and creates, oldest first; opts.state, opts.tenant: those of one state, of one tenant.
function M.tasks(self, opts)
  opts = begin(self, "tasks", opts)
  local list, err = listed(self, "tasks", opts)
  if not list then return nil, err end
  local only, sink = {}, require "starvideos.sink"
  for _, t in ipairs(list) do
    local kept = (not opts.state or t.state == opts.state) and (not opts.tenant or t.tenant == opts.tenant)
    if kept and (not opts.parent or t.parent == opts.parent) then only[#only + 1] = t end
    if opts.check and t.path then t.check, t.check_error = sink.of(self.cfg, t.path).check(t, self.ctx) end
    if t.status == "failed" and not t.reason then -- (a store's record, or a journal's before reasons: its words)
      t.reason, t.input = require("starvideos.failure").classify(t.error, self.cfg.failure_patterns)
    end
  end
  return only
end

-- Each limit of spend_limit in its window now (docs/spend.md): {limit, scope, model, tenant, spent, reserved, amount,
-- resets_at}s, as the ledger counts them (opts.tenant: a limit of every tenant, that tenant's only), or nil, err.
function M.spend(self, opts)
  opts = begin(self, "spend", opts)
  if not self.cfg.spend then return {} end
  local list, err = self.ledger:spend(opts.tenant)
  if not list then return nil, new_error("io", tostring(err), { field = self.ledger.field }) end
  return list
end

-- Puts them on the client's class (begin: client.lua's check of a call's options).
return function(Client, check)
  begin = check
  for k, f in pairs(M) do Client[k] = f end
end
