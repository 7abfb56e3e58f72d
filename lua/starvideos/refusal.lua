-- The same refusal never paid twice (docs/failures.md#the-same-refusal-never-paid-twice): a create's content
-- address (its endpoint and body as content, not as spelled: the body in canonical JSON, each local file by its
-- SHA-256 in place of its path), the ledger's refusal of that content asked before anything is sent, and a task that
-- failed for `policy` or `input` kept in the ledger by it (a `service` or `unknown` failure is not kept: it may pass
-- if tried again).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local errors = require "starvideos.errors"
local Failure = require "starvideos.failure"

local type, ipairs, tostring, string_format = type, ipairs, tostring, string.format

local M = {}

M.KEPT = { policy = true, input = true } -- the reasons kept: the same content would fail the same way

-- The body's members that name reference media (the core's list), as their names are written in it.
local MEDIA = {}
for _, name in ipairs(require("starvideos.core").media_fields) do MEDIA['"' .. name .. '"'] = true end

-- The body in canonical form (jcs.lua, RFC 8785's shape) but its strings and numbers as spelled (the text the
-- service receives), each local file's {"file": path} within a reference field as {"sha256": sums[path]}.
M.canonical = function(body, sums) return require("starvideos.jcs").spelled(body, sums, MEDIA) end

-- The content address of a create (path, body: as built; refs: create.lua's references): its endpoint and its body
-- in canonical JSON, each local file's {"file": path} as {"sha256": its bytes'} (one that is not a regular file or
-- cannot be read keeps its path: the create is refused naming it later, by the references' own check).  The same
-- content spelled otherwise (extra's keys in another order, a file by another path, a copy, a link) is one address.
-- (A refusal kept by an older version was kept by the body as spelled: docs/failures.md.)
function M.address(path, body, refs)
  local sign = require "starvideos.sign"
  local file_kind = require("starvideos.core").file_kind
  local sums = {}
  for _, r in ipairs(refs) do -- (a regular file's bytes only: opening a FIFO would wait for a writer forever)
    if r.file and sums[r.file] == nil then
      sums[r.file] = file_kind(r.file, true) == "file" and sign.sha256_file(r.file) or false
    end
  end
  return sign.sha256(path .. "\n" .. M.canonical(body, sums))
end

-- The error of a create for tenant (nil: nobody named) refused before it is sent: e the refusal kept ({id, reason,
-- input, error, tenant}).  Another tenant's refusal refuses it all the same (the key pays), but says nothing of that
-- task: neither its id nor the service's words (nor that tenant).
function M.refused(e, tenant)
  local own = e.tenant == tenant
  local said = own and type(e.error) == "string" and string_format(": %q", e.error) or ""
  return errors.new_error("refused_before", string_format("the same create (model, parameters and "
    .. "references) failed before %s, for %s%s%s; nothing was sent, nothing paid; change %s, or send it "
    .. "anyway with resend = true", own and "as task " .. tostring(e.id) or "for another tenant of this key",
    tostring(e.reason), e.input and " (" .. e.input .. ")" or "", said,
    e.input or (e.reason == "policy" and "the prompt or a reference" or "the parameters")),
    { task = own and { id = e.id, status = "failed", error = e.error } or nil, reason = e.reason, input = e.input })
end

-- Before a create of job is sent (create.lua's peeking): nil (send it), false (the ledger has not answered: ask
-- again), or the refusal (nothing sent).  resend = true asks nothing.
function M.ask(job)
  local c = job.create
  if not c.addr or c.resend then return nil end
  local e = job.ledger:refusal(c.addr)
  if e == false then return false end
  return e and M.refused(e, job.tenant) or nil
end

-- A task's status record rec folded into a journal's refusals (refused: content address -> the task its refusal
-- names; t: the task, t.addr its created record's): a refusal kept (rec.addr), a failure the rules keep (its
-- content refused, whoever learned it), or a completion (its content passed since: no longer refused).
function M.fold(refused, t, rec)
  local addr = type(rec.addr) == "string" and rec.addr or t.addr
  if not addr then return end
  t.addr, t.tenant = addr, t.tenant or type(rec.tenant) == "string" and rec.tenant or nil -- (its created's first)
  if rec.addr or rec.status == "failed" and M.KEPT[rec.reason] then refused[addr] = t
  elseif rec.status == "completed" then refused[addr] = nil end
end

-- A task of job failed (err: task_failed): its reason explained (the user's failure_patterns first), and kept in
-- the ledger by the job's content address when it is policy or input.  err.
function M.failed(job, err)
  Failure.explain(err, job.cfg.failure_patterns)
  local addr = job.create and job.create.addr
  if addr and M.KEPT[err.reason] and job.id then
    local words = err.task and err.task.error
    local ok, why = job.ledger:refused(job.id, addr, err.reason, err.input, type(words) == "string" and words
      or nil, job.tenant)
    if ok == nil and why then job:emit("warning", { field = "refused_before", message = "task " .. job.id
      .. "'s refusal was not kept (the same create may be sent again): " .. tostring(why) }) end
  end
  return err
end

return M
