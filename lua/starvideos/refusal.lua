-- The same refusal never paid twice (docs/failures.md#the-same-refusal-never-paid-twice): a create's content
-- address (its endpoint and body: the model, every parameter, each reference's URL, and each local file's SHA-256),
-- the ledger's refusal of that content asked before anything is sent, and a task that failed for `policy` or
-- `input` kept in the ledger by it (a `service` or `unknown` failure is not kept: it may pass if tried again).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local errors = require "starvideos.errors"
local Failure = require "starvideos.failure"

local type, ipairs, tostring, string_format, table_concat = type, ipairs, tostring, string.format, table.concat

local M = {}

M.KEPT = { policy = true, input = true } -- the reasons kept: the same content would fail the same way

-- The content address of a create (path, body: as built; refs: create.lua's references, local files hashed by
-- their bytes, wherever they are put; one that is not a regular file or cannot be read: the create is refused naming
-- it later, by the references' own check).
function M.address(path, body, refs)
  local sign = require "starvideos.sign"
  local parts = { path, body }
  local file_kind = require("starvideos.core").file_kind
  for _, r in ipairs(refs) do -- (a regular file's bytes only: opening a FIFO would wait for a writer forever)
    local sum = r.file and file_kind(r.file, true) == "file" and sign.sha256_file(r.file)
    if r.file then parts[#parts + 1] = r.field .. " " .. (sum or "unread " .. r.file) end
  end
  return sign.sha256(table_concat(parts, "\n"))
end

-- The error of a create for tenant (nil: nobody named) refused before it is sent: e the refusal kept ({id, reason,
-- input, error, tenant}).  Another tenant's refusal refuses it all the same (the key pays), but says nothing of that
-- task: neither its id nor the service's words (nor that tenant).
function M.refused(e, tenant)
  local own = e.tenant == tenant
  local said = own and type(e.error) == "string" and string_format(": %q", e.error) or ""
  return errors.new_error("refused_before", string_format("the same create (model, parameters and "
    .. "references) failed before %s, for %s%s%s; nothing was sent, nothing paid; change %s, or send it "
    .. "anyway with resend = true (--resend)", own and "as task " .. tostring(e.id) or "for another tenant of this key",
    tostring(e.reason), e.input and " (" .. e.input .. ")" or "", said,
    e.input or (e.reason == "policy" and "the prompt or a reference" or "the parameters")),
    { task = own and { id = e.id, status = "failed", error = e.error } or nil, reason = e.reason, input = e.input })
end

-- Before a create of job is sent (create.lua's peeking): nil (send it), false (the ledger has not answered: ask
-- again), or the refusal (nothing sent).  resend = true asks nothing.
function M.ask(job)
  if not job.addr or job.resend then return nil end
  local e = job.ledger:refusal(job.addr)
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
  if job.addr and M.KEPT[err.reason] and job.id then
    local words = err.task and err.task.error
    local ok, why = job.ledger:refused(job.id, job.addr, err.reason, err.input, type(words) == "string" and words
      or nil, job.tenant)
    if ok == nil and why then job:emit("warning", { field = "refused_before", message = "task " .. job.id
      .. "'s refusal was not kept (the same create may be sent again): " .. tostring(why) }) end
  end
  return err
end

return M
