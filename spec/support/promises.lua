-- The promises of docs/reference.md and ../shared/CONTRACT.md that a place can hold (spec/support/matrix.lua's
-- places), the rows of docs/matrix.md.  Each: id; title (the row's words); doc (where it is promised); na (place
-- -> why the promise cannot apply there: the cell is "—" with that reason); open (place -> what is missing: a cell
-- no case proves yet, said on the page as open, and a cell a case proves must leave this list).  Every other cell
-- is proved by a case of the tiers (matrix.it, or a case list's case.promise).
local P = {}

-- reasons said of many promises
local NO_SINK = "what is promised does not depend on where the video goes"
local NO_LEDGER = "what is promised does not depend on where counts and tasks are kept"
local NO_KEYS = "the process alone keeps no key past its end: a rerun is rerun-safe with a journal or a store "
  .. "(docs/batch.md \"Keys\")"
local DICT_NO_TASKS = "nginx's dict holds counts, budgets and spend, not tasks: a handler's tasks are a journal's "
  .. "or a store's"
local NO_PARENT = "a client without a journal or a store has no ledger to take a parent from (refused, field task)"
local NO_CTRL_C = "no terminal and no Ctrl-C there"

local function vm_free(t) -- the VM axis' reason, for a promise whose cases run in the hosts' tier only
  for _, vm in ipairs { "lua5.1", "lua5.2", "lua5.3", "luajit" } do
    t[vm] = t[vm] or "proved in a host (nginx, Redis, a browser), which the hosts' tier runs under Lua 5.4 alone"
  end
  return t
end

local function also(t, more)
  for k, v in pairs(more) do t[k] = v end
  return t
end

P.list = {
  { id = "generate", title = "create, wait and download: a whole video at its out",
    doc = "docs/reference.md#clientgenerate", na = {} },
  { id = "rerun", title = "a rerun pays nothing: a keyed job follows the task it made",
    doc = "docs/batch.md#keys", na = { process = NO_KEYS, dict = DICT_NO_TASKS } },
  { id = "ctrl_c", title = "Ctrl-C says what was paid and the line that goes on",
    doc = "docs/reference.md#ctrl-c",
    na = { dict = NO_CTRL_C .. ": a worker is stopped by nginx", nginx = NO_CTRL_C .. ": a worker is stopped by nginx",
      studio = "the page runs nothing to interrupt: its server is the command line's (the cli column)" } },
  { id = "create_limit", title = "create_limit: at most N creates, across every writer of the place",
    doc = "docs/reference.md#starvideosnew", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "tenant_limit", title = "tenant_limit: each tenant's creates capped, the others going on",
    doc = "docs/tenants-and-costs.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "rate_hold", title = "the rate-limit hold: a 429 or a spent reset holds every request of the key",
    doc = "docs/reference.md#rate-limits",
    na = { journal = "a journal holds no budget: the hold is the process's, nginx's dict's or Redis'",
      file = NO_SINK, bucket = NO_SINK } },
  { id = "spend_refusal", title = "spend_limit: a create past the cap is refused, nothing sent",
    doc = "docs/spend.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "spend_reservation", title = "spend_limit: racing creates reserve, never past the cap",
    doc = "docs/spend.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "spend_warnings", title = "spend_limit: 50%, 80% and 100% said once per window",
    doc = "docs/spend.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "spend_restart", title = "spend_limit: a restart, reload or crash lets no spend past the cap",
    doc = "docs/spend.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "again", title = "again: the parent's parameters, changed, as a new keyed job",
    doc = "docs/lineage.md", na = { process = NO_PARENT, dict = DICT_NO_TASKS } },
  { id = "remix", title = "remix: the parent's video as the reference, its parameters kept",
    doc = "docs/lineage.md", na = { process = NO_PARENT, dict = DICT_NO_TASKS } },
  { id = "continue", title = "continue: the parent's last frame as first_image, into any out",
    doc = "docs/lineage.md", na = { process = NO_PARENT, dict = DICT_NO_TASKS } },
  { id = "film", title = "film: every shot checked and priced before the first create",
    doc = "docs/lineage.md#a-film", na = { process = NO_PARENT, dict = DICT_NO_TASKS } },
  { id = "lineage", title = "lineage: parent and relation recorded, the tree shown",
    doc = "docs/lineage.md", na = { process = NO_PARENT, dict = DICT_NO_TASKS } },
  { id = "eta_late", title = "eta and late: learned from tasks however they were awaited",
    doc = "docs/polling.md", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "warnings", title = "warnings: what the service will ignore is said before the create",
    doc = "docs/reference.md#warnings",
    na = { process = NO_LEDGER, journal = NO_LEDGER, dict = NO_LEDGER, redis = NO_LEDGER, file = NO_SINK,
      bucket = NO_SINK } },
  { id = "request_ids", title = "request ids: every failure names the request the service saw",
    doc = "docs/reference.md#request-ids",
    na = { process = NO_LEDGER, journal = NO_LEDGER, dict = NO_LEDGER, redis = NO_LEDGER, file = NO_SINK,
      bucket = NO_SINK } },
  { id = "preflight", title = "preflight: a reference the service could not fetch is refused before paying",
    doc = "docs/media.md",
    na = { process = NO_LEDGER, journal = NO_LEDGER, dict = NO_LEDGER, redis = NO_LEDGER, file = NO_SINK,
      bucket = NO_SINK } },
  { id = "resumable", title = "an interrupted download resumes where it stopped, verified whole",
    doc = "docs/downloads.md", na = { dict = DICT_NO_TASKS } },
  { id = "metrics", title = "metrics: every request, create and spend counted",
    doc = "docs/observability.md#metrics", na = { file = NO_SINK, bucket = NO_SINK } },
  { id = "traces", title = "traces: a span for every request, in one trace per task",
    doc = "docs/observability.md", na = { file = NO_SINK, bucket = NO_SINK } },
}

P.by_id = {}
for _, p in ipairs(P.list) do
  p.open = p.open or {}
  P.by_id[p.id] = p
end
P.vm_free, P.also = vm_free, also

return P
