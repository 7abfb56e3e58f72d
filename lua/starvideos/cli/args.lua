-- starvideos.cli.args: the commands, their flags, help texts and examples, which cli/parser.lua reads a line and
-- writes a help by (cli/complete.lua: the shells' scripts); the usage error, and the command as it was invoked.
-- Needs neither the library nor cjson, so that it loads on every Lua the house supports (5.1 to 5.4, LuaJIT)
-- before anything else is required.
--
-- A usage error is raised as an object { kind = "usage", message = ... } with the
-- metatable M.Usage; the entry point catches it (exit 2).

local type, pairs, ipairs, select, error, setmetatable, getmetatable =
  type, pairs, ipairs, select, error, setmetatable, getmetatable
local string_format = string.format

local M = {}

M.PROG = "starvideos" -- the name its messages start with
-- The command as it was invoked, one shell word (M.invoked_as; cli.main sets it): every
-- command a message tells a person to run starts with it, so that pasted it works.
M.INVOKED = "starvideos"

-- The command a person typed, from the launcher's arg[0] and $PATH: the bare name when
-- the shell found it on the PATH (arg[0] then names a directory of the PATH), else arg[0]
-- as given (`bin/starvideos` from a checkout, an absolute path).  The copy a LuaRocks
-- wrapper runs (TREE/lib/luarocks/rocks-5.4/starvideos/VERSION/bin/starvideos) stands for
-- the wrapper, TREE/bin/starvideos.
function M.invoked_as(arg0, path)
  if type(arg0) ~= "string" or arg0 == "" then return M.PROG end
  local dir, base = arg0:match("^(.*)/([^/]+)$")
  if not dir then return arg0 end
  local tree = dir:match("^(.*)/lib/luarocks/rocks[^/]*/[^/]+/[^/]+/bin$")
  if tree then dir, arg0 = tree .. "/bin", tree .. "/bin/" .. base end
  for d in ((path or "") .. ":"):gmatch("([^:]*):") do
    if d ~= "" and d:gsub("/+$", "") == dir then return base end
  end
  return arg0
end

-- ----------------------------------------------------------- usage errors

local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(e) return e.message end
M.Usage = Usage

-- An error of the command line, reported as it is said (not as an internal one): kind "usage" exits 2, another 1.
function M.raise(kind, fmt, ...)
  error(setmetatable({ kind = kind, message = string_format(fmt, ...) }, Usage), 0)
end

function M.usage_error(fmt, ...) M.raise("usage", fmt, ...) end

function M.is_usage(e) return type(e) == "table" and getmetatable(e) == Usage end

function M.quote(s) return string_format("%q", s) end

-- --fallback MODEL[,MODEL]: the list of models (nil without it); a word that is no model refused (usage).
function M.models(text)
  if not text then return nil end
  local list, known = {}, require("starvideos.core").models
  for m in text:gmatch("[^,%s]+") do
    if not known[m] then M.usage_error("--fallback: %s is no model (`starvideos models` lists them)", M.quote(m)) end
    list[#list + 1] = m
  end
  if not list[1] then M.usage_error("--fallback: a model name expected, got %s", M.quote(text)) end
  return list
end

-- Whether a word typed where a name goes (a command, a file's path) looks like a secret, and a refusal must not echo
-- it: an API key or a webhook secret (sk-..., whsec_...), or a long token of letters and digits, no path, no dot.
function M.secret_like(w)
  return w:find("^sk[-_]") ~= nil or w:find("^whsec_") ~= nil
    or #w >= 16 and not w:find("[/.%s]") and w:find("%d") ~= nil and w:find("%a") ~= nil
end

-- An unknown command w as a refusal names it: quoted (as shown, its cut when long) when it looks like no secret,
-- else its length alone (an API key typed where the command goes stays unseen).
function M.command_word(w, shown)
  if not M.secret_like(w) then return M.quote(shown or w) end
  return string_format("(a word of %d bytes, not shown: it is no command's name and may be a secret)", #w)
end

-- ------------------------------------------------------------------ flags

-- kind: "bool", "str", "list" (repeatable), "int", "num" (>= 0), "pos" (> 0),
-- "choice" (one of choices, in any case), "name" (1 to 200 bytes, no control character): parser.lua's CONVERT
local FLAG = {
  help = { kind = "bool", text = "show this help and exit" },
  json = { kind = "bool", text = "print one JSON document on stdout (machine output), errors included" },
  model = { kind = "str", meta = "NAME", field = "model",
    text = "model: starvideos_o3, videos, videos_fast, videos_stable, videos_stable_fast" },
  prompt = { kind = "str", meta = "TEXT", field = "prompt", text = "what the video shows" },
  duration = { kind = "int", meta = "S", field = "duration",
    text = "length in whole seconds (see `starvideos models`)" },
  ratio = { kind = "str", meta = "W:H", field = "ratio", text = "aspect ratio, e.g. 16:9 or 9:16" },
  resolution = { kind = "str", meta = "RES", field = "resolution",
    text = "resolution, e.g. 720p (not on starvideos_o3)" },
  ["first-image"] = { kind = "str", meta = "URL|PATH", field = "first_image", ref = true,
    text = "first frame (with --last-image); for every reference flag, a PATH (no scheme://) is a local file, "
      .. "put into $STARVIDEOS_REFS first" },
  ["last-image"] = { kind = "str", meta = "URL|PATH", field = "last_image", ref = true,
    text = "last frame (with --first-image)" },
  ["ref-image"] = { kind = "list", meta = "URL|PATH", field = "referenceImages", ref = true,
    text = "reference image (repeatable)" },
  ["ref-video"] = { kind = "list", meta = "URL|PATH", field = "referenceVideos", ref = true,
    text = "reference video (repeatable)" },
  ["ref-audio"] = { kind = "list", meta = "URL|PATH", field = "referenceAudios", ref = true,
    text = "reference audio (repeatable)" },
  extra = { kind = "str", meta = "JSON",
    text = "more request fields, as a JSON object sent as it is (params.extra), e.g. '{\"seed\": 7}'" },
  ["base-url"] = { kind = "str", meta = "URL",
    text = "API base URL (default: $STARVIDEOS_BASE_URL, else the provider's)" },
  ["api-key-file"] = { kind = "str", meta = "PATH",
    text = "read the API key from the first line of PATH (- for stdin); default: $STARVIDEOS_API_KEY" },
  interval = { kind = "num", meta = "S",
    text = "seconds between status checks (default: learned from earlier tasks, else 30)" },
  timeout = { kind = "pos", meta = "S", text = "give up waiting after S seconds (default 1800)" },
  proxy = { kind = "str", meta = "URL",
    text = "an HTTP proxy for every request, http://[user:pass@]host:port (default: $http_proxy, $https_proxy)" },
  log = { kind = "choice", meta = "debug|info", choices = { "debug", "info" },
    text = "log each event on stderr: info, or debug with every request (default: $STARVIDEOS_LOG)" },
  ["create-limit"] = { kind = "str", meta = "N/SECONDS",
    text = "at most N creates in any SECONDS, counted in the journal or store (e.g. 150/86400)" },
  ["tenant-limit"] = { kind = "str", meta = "N/SECONDS",
    text = "at most N creates of one --tenant in any SECONDS, counted in the journal or store (e.g. 20/3600)" },
  tenant = { kind = "name", meta = "T",
    text = "the tenant (an end user of your app) the task is made for: recorded with it, counted by "
      .. "--tenant-limit, and given its fair share of the key's budget" },
  prices = { kind = "str", meta = "JSON",
    text = "the price of one create per model, a JSON object (e.g. '{\"videos\": 0.4}'): each task's cost is "
      .. "recorded, and --dry-run adds them up" },
  ["failed-prices"] = { kind = "str", meta = "JSON",
    text = "what a task that fails at the service costs, per model, a JSON object (e.g. '{\"videos\": 0}'): once "
      .. "its failure is known, its cost and every --spend-limit count it at that price (default: its full price)" },
  ["spend-limit"] = { kind = "str", meta = "JSON",
    text = "a cap on money, a JSON limit or a list of them (the option spend_limit), e.g. '{\"amount\": 5, \"per\": "
      .. "\"day\"}' or '[{\"amount\": 1, \"per\": \"day\", \"scope\": \"tenant\"}]': a create past one is "
      .. "refused, nothing sent; priced by --prices, counted in the journal or store" },
  ["dry-run"] = { kind = "bool",
    text = "send nothing: print every create the command would send (and why), its model and price, and what it "
      .. "would only download (the ledger is read, nothing else)" },
  journal = { kind = "str", meta = "PATH", text = "append every created task to this JSON-lines journal" },
  preflight = { kind = "choice", meta = "strict|off", choices = { "strict", "off" },
    text = "the reference media check before a create: strict refuses what cannot be checked, off skips it "
      .. "(default: what cannot be checked is a note on stderr)" },
  store = { kind = "str", meta = "URL",
    text = "the fleet's ledger and budget, a store's URL scheme://... that an installed ledger rock serves "
      .. "(default: $STARVIDEOS_STORE)" },
  out = { kind = "str", meta = "PATH", text = "download the finished video to PATH" },
  dir = { kind = "str", meta = "PATH", text = "directory for the videos, saved as <id>.mp4 (default .)" },
  key = { kind = "str", meta = "KEY",
    text = "the job's name in the ledger (--journal or --store): a rerun with the same KEY follows its task "
      .. "instead of paying again" },
  ["prompts-file"] = { kind = "str", meta = "FILE",
    text = "one prompt a line (blank and # lines skipped), or one JSON params object a line in a .jsonl file" },
  ["out-dir"] = { kind = "str", meta = "DIR",
    text = "the videos go to DIR/0001.mp4 and on (DIR is made when its parent exists)" },
  submit = { kind = "bool",
    text = "queue every line in --store for the keepers of the fleet (`starvideos keep --store URL`) to create, "
      .. "print the batch id and return: nothing is sent to the service" },
  status = { kind = "str", meta = "ID", text = "the counts of the batch ID that --submit queued: queued, created, "
    .. "saved, failed, total" },
  priority = { kind = "int", meta = "N",
    text = "with --submit: the lines' priority, 1 (first) to 5 (last); default 3" },
  ["skip-duplicates"] = { kind = "bool",
    text = "leave out each entry whose request an earlier line's is (else each is a paid create of its own; the "
      .. "run names them either way)" },
  fresh = { kind = "bool",
    text = "create anew even when the ledger holds this job's task, or a create of it never answered: a new paid "
      .. "create, which the ledger's key then names (the option fresh = true)" },
  resend = { kind = "bool",
    text = "send it even when the same create (model, params, references) failed before for policy or input (else "
      .. "refused before anything is sent: it would be paid for and fail the same way)" },
  fallback = { kind = "str", meta = "MODEL[,MODEL]",
    text = "after a task failed for service or unknown (never policy or input, never a create whose answer was not "
      .. "seen), MODEL with the same params, then the next: each a paid create of its own (--dry-run: the worst "
      .. "case)" },
  ["skip-failed"] = { kind = "bool",
    text = "leave out the entries whose task failed in an earlier run (else each is created again: a new paid "
      .. "create)" },
  forget = { kind = "str", meta = "ID",
    text = "settle the pending create ID (its answer never came): its key may create again" },
  adopt = { kind = "str", meta = "ID",
    text = "settle the pending create ID with TASK_ID, the task you found it made (checked at the service): its "
      .. "key follows that task, and a rerun pays for nothing again" },
  state = { kind = "choice", meta = "STATE",
    choices = { "pending", "created", "completed", "failed", "downloaded", "abandoned" },
    text = "only the tasks in STATE: pending, created, completed, failed, downloaded or abandoned" },
  once = { kind = "bool", text = "carry what is orphaned now, then exit (printing what resume prints)" },
  tree = { kind = "bool",
    text = "each task's children (made by again, remix or continue) indented under it, with their relation" },
  check = { kind = "bool",
    text = "compare each downloaded file with the size and SHA-256 recorded when it was saved; exit 1 when one "
      .. "is missing or changed" },
  lease = { kind = "pos", meta = "S",
    text = "seconds a task's owner has to renew its lease (default 30); keep looks every S/6 s, at most 5" },
  notify = { kind = "str", meta = "URL",
    text = "POST a signed webhook there when a task completes (after its download) or fails" },
  ["sign-key"] = { kind = "str", meta = "PATH",
    text = "sign each saved video's provenance record with the Ed25519 private key in PEM at PATH (default: "
      .. "$STARVIDEOS_SIGN_KEY); starvideos verify --pubkey checks it" },
  pubkey = { kind = "str", meta = "PEM",
    text = "also check the record's signature with this Ed25519 public key (PEM); exit 1 when it is missing, by "
      .. "another key, or a field changed" },
  ["notify-secret-file"] = { kind = "str", meta = "PATH",
    text = "the webhook secret (whsec_... or any string) on the first line of PATH (with --notify)" },
}
M.FLAG = FLAG

local REQUEST = { "model", "prompt", "duration", "ratio", "resolution", "first-image", "last-image",
  "ref-image", "ref-video", "ref-audio", "extra" }
-- batch: the request flags but --prompt (the prompts come from --prompts-file)
local BATCH = { "model", "duration", "ratio", "resolution", "first-image", "last-image", "ref-image", "ref-video",
  "ref-audio", "extra" }
-- continue: the request flags but --first-image (the parent's last frame is the first image)
local CONTINUE = { "model", "prompt", "duration", "ratio", "resolution", "last-image", "ref-image", "ref-video",
  "ref-audio", "extra" }
local CLIENT = { "base-url", "api-key-file", "proxy", "log", "sign-key" }
local NOTIFY = { "notify", "notify-secret-file" }

local function flags(...)
  local list = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" then
      for _, name in ipairs(v) do list[#list + 1] = name end
    else
      list[#list + 1] = v
    end
  end
  list[#list + 1] = "json"
  list[#list + 1] = "help"
  return list
end

-- field -> the flag that fills it (for error messages): "duration" -> "--duration"
M.FIELD_FLAG = {}
for name, f in pairs(FLAG) do
  if f.field then M.FIELD_FLAG[f.field] = "--" .. name end
end
M.FIELD_FLAG.extra = "--extra"

-- ------------------------------------------------------------ commands

-- again, remix and continue: a new video from task ID of the ledger, to its own --out, made as generate makes one;
-- request: its request flags, text: its flags' own help.
local function child(request, summary, text)
  local flag_text = {
    out = "the new video's file (never the parent's): its key, so the same command again pays nothing",
    journal = "the JSON-lines journal that holds task ID (the new task is recorded there, with its parent)",
    store = "the fleet's ledger (a store's URL) that holds task ID (default: $STARVIDEOS_STORE)" }
  for k, v in pairs(text) do flag_text[k] = v end
  return { args = { "ID" }, needs_key = true, ledger = true, required = { "out" }, summary = summary,
    flags = flags(request, "out", "tenant", "interval", "timeout", "journal", "store", "create-limit", "tenant-limit",
      "prices", "failed-prices", "spend-limit", "preflight", CLIENT, NOTIFY), flag_text = flag_text }
end

local COMMANDS = {
  create = {
    args = {}, needs_key = true,
    flags = flags(REQUEST, "key", "fresh", "resend", "tenant", "journal", "store", "create-limit", "tenant-limit",
      "prices", "failed-prices", "spend-limit", "preflight", CLIENT),
    summary = "create a task and print its id (the video is made asynchronously)",
    flag_text = { key = "the task's name in the ledger (--journal or --store): a rerun with the same KEY prints "
      .. "its task, creating none" },
  },
  status = {
    args = { "ID" }, needs_key = true, flags = flags(CLIENT),
    summary = "show a task's status (and video_url once completed); exit 1 when it failed",
  },
  wait = {
    args = { "ID" }, needs_key = true, flags = flags("out", "interval", "timeout", "journal", "store", "failed-prices",
      CLIENT, NOTIFY),
    summary = "wait until a task is completed and, with --out, download it; exit 1 when it fails or times out",
    flag_text = { out = "once completed, download the video to PATH (a directory gets <id>.mp4)",
      journal = "the journal that holds the task: its download is recorded there",
      store = "the fleet's ledger (a store's URL) that holds the task (default: $STARVIDEOS_STORE)" },
  },
  download = {
    args = { "ID", "PATH" }, needs_key = true, flags = flags(CLIENT),
    summary = "download a completed task's video to PATH (a directory gets <id>.mp4)",
  },
  generate = {
    args = {}, needs_key = true,
    flags = flags(REQUEST, "out", "key", "fresh", "resend", "fallback", "tenant", "interval", "timeout", "journal",
      "store", "create-limit", "tenant-limit", "prices", "failed-prices", "spend-limit", "dry-run", "preflight", CLIENT,
      NOTIFY),
    summary = "create a task, wait for it and, with --out, download the video",
    flag_text = { key = "the job's name in the ledger when it has no --out (a job with --out is keyed by its file): "
      .. "a rerun with the same KEY follows its task instead of paying again" },
  },
  batch = {
    args = {}, needs_key = true,
    flags = flags("prompts-file", "out-dir", BATCH, "tenant", "journal", "store", "skip-failed", "skip-duplicates",
      "fresh", "resend", "fallback", "interval", "timeout", "create-limit", "tenant-limit", "prices", "failed-prices",
      "spend-limit", "dry-run", "preflight", "submit", "status", "priority", CLIENT, NOTIFY),
    summary = "generate a video per line of a file, rerun-safe: a rerun never pays for a video twice",
    required = { "prompts-file", "out-dir" }, unless = "status",
    flag_text = { journal = "the batch's journal (default: DIR/starvideos.jsonl); a rerun must name the same one",
      store = "the fleet's ledger, a store's URL scheme://..., instead of a journal (only when given: "
        .. "not $STARVIDEOS_STORE); a rerun must name the same one",
      model = "the model of every line that does not name one" },
  },
  models = {
    args = {}, flags = flags(),
    summary = "list the models and what each accepts (no key, no network)",
  },
  validate = {
    args = {}, flags = flags(REQUEST),
    summary = "check a request locally, as create would (no key, no network)",
  },
  check = {
    args = {}, flags = flags(REQUEST, "preflight", CLIENT),
    summary = "check a request and its reference media, as create would, creating nothing (no key needed)",
    flag_text = { preflight = "strict: what cannot be checked fails too (exit 2)" },
  },
  resume = {
    args = {}, needs_key = true, flags = flags("journal", "store", "dir", "interval", "timeout", "failed-prices",
      "dry-run", CLIENT, NOTIFY),
    summary = "wait for and download every task of the ledger (journal or store) not downloaded yet",
    ledger = true,
    flag_text = { journal = "the JSON-lines journal whose tasks to wait for and download (each download is recorded "
      .. "there)" },
  },
  keep = {
    args = {}, needs_key = true,
    flags = flags("journal", "store", "dir", "once", "lease", "interval", "timeout", "prices", "failed-prices",
      "spend-limit", "dry-run", CLIENT, NOTIFY),
    summary = "carry the ledger's tasks whose process died to their files, until --timeout, stopped or --once",
    ledger = true,
    flag_text = { journal = "the JSON-lines journal whose orphaned tasks to carry (other processes write it meanwhile)",
      store = "the fleet's ledger (a store's URL) whose orphaned tasks to carry (default: $STARVIDEOS_STORE)",
      dir = "directory for the videos whose create named no writable --out, as <id>.mp4 (default .)",
      timeout = "stop after S seconds (default: run until stopped)" },
  },
  pending = {
    args = {}, flags = flags("journal", "store", "forget", "adopt", CLIENT),
    flag_args = { adopt = { "TASK_ID" } }, -- (pending --adopt ID TASK_ID)
    summary = "list the creates whose answer never came (the task may exist): reconcile them by hand",
    ledger = true,
    flag_text = { journal = "the JSON-lines journal to read (with --forget: the create is settled there)",
      store = "the fleet's ledger, a store's URL (default: $STARVIDEOS_STORE; the key's tasks: needs the key)" },
  },
  again = child(REQUEST, "create a task of the ledger again: its recorded params, changed by the request flags given",
    {}),
  remix = child(REQUEST, "a new video with a task's saved video as its reference video (the model's rules checked "
    .. "first)", { model = "the model (default: the parent's); it must take a reference video" }),
  continue = child(CONTINUE, "a new video that starts at a task's last frame (taken by ffmpeg) and ends at "
    .. "--last-image", { ["last-image"] = "the new video's last frame (required: the API takes the parent's last "
      .. "frame as its first only beside one)",
      model = "the model (default: the parent's, and its duration, ratio and resolution)" }),
  film = {
    args = { "FILE" }, needs_key = true, ledger = true, required = { "out" },
    flags = flags("out", "tenant", "interval", "timeout", "journal", "store", "create-limit", "tenant-limit", "prices",
      "spend-limit", "dry-run", "preflight", "resend", "fallback", CLIENT, NOTIFY),
    summary = "make each shot of a storyboard (a JSON file), rerun-safe, and join them into one MP4 (ffmpeg)",
    flag_text = { out = "the film's file; each shot's beside it (film.mp4: film.shot01.mp4 and on), its key: a rerun "
      .. "pays for no shot twice",
      journal = "the JSON-lines journal of the shots' tasks (a rerun must name the same one)",
      store = "the fleet's ledger (a store's URL) of the shots' tasks (default: $STARVIDEOS_STORE)",
      ["dry-run"] = "send nothing: print each shot, whether it would be created or is made already, its model and "
        .. "price, and the film's cost" },
  },
  list = {
    args = {}, flags = flags("journal", "store", "state", "tenant", "tree", "check", "prices", "spend-limit", CLIENT),
    summary = "list the ledger's tasks: state, file and prompt of each (a journal needs no key)",
    ledger = true,
    flag_text = { journal = "the JSON-lines journal to list (read only: no key, no network)",
      store = "the fleet's ledger, a store's URL (default: $STARVIDEOS_STORE; the key's tasks: needs the key)",
      tenant = "only the tasks of tenant T",
      json = "one JSON object per task and line: id (or local), key, out, state, status, error, created_at, "
        .. "path, bytes, sha256, model, prompt, tenant, cost, parent, relation (with --tree: depth, in the tree's "
        .. "order; with --check: check, check_error); with --spend-limit, "
        .. "then one per limit, as spend --json gives it",
      ["spend-limit"] = "the spend limits whose spend in the window now to print after the list (as `starvideos "
        .. "spend` prints it)" },
  },
  spend = {
    args = {}, flags = flags("journal", "store", "spend-limit", "prices", "tenant", CLIENT),
    summary = "show each spend limit's spent, reserved and amount in its window now, and when it resets",
    ledger = true, required = { "spend-limit" },
    flag_text = { journal = "the JSON-lines journal whose spend to read (read only: no key, no network)",
      store = "the fleet's ledger, a store's URL (default: $STARVIDEOS_STORE; the key's spend: needs the key)",
      tenant = "a limit of every tenant: tenant T's spend only (else each tenant that spent in the window)",
      json = "client:spend()'s list: one object per limit (and tenant): limit, scope, model, tenant, spent, reserved, "
        .. "amount, resets_at, window_start" },
  },
  compact = {
    args = {}, flags = flags("journal"),
    summary = "rewrite the journal without its settled tasks (what resume, pending and the schedule need stays)",
    required = { "journal" },
    flag_text = { journal = "the JSON-lines journal to compact (other processes may append to it meanwhile)" },
  },
  verify = {
    args = { "PATH" }, flags = flags("pubkey"),
    summary = "check a video against its provenance record PATH.json and its parents' records where present (exit 1: "
      .. "one differs, said on stderr)",
    arg_text = { PATH = "the video file (its record: PATH.json beside it)" },
  },
  completion = {
    args = { "SHELL" }, flags = flags(), choices = { SHELL = { "bash", "zsh", "fish" } },
    summary = "print the shell's completion script of the commands and their flags: bash, zsh or fish",
  },
}
M.COMMANDS = COMMANDS
M.ORDER = { "create", "status", "wait", "download", "generate", "batch", "again", "remix", "continue", "film",
  "models", "validate", "check", "resume", "keep", "pending", "list", "spend", "compact", "verify", "completion" }

-- What each argument of the core's commands is, as their help lists it.
M.ARG_TEXT = { ID = "the task's id (video_...), as create printed it", PATH = "the file (a directory gets <id>.mp4)",
  FILE = "the storyboard: a JSON file of shots (docs/lineage.md)", SHELL = "the shell: bash, zsh or fish" }

-- A rock's command (extension.lua's command point) described by its usage: { args = {ARG...}, flags = {{name =,
-- kind =, meta =, text =}...} (its own, read as FLAG's rows), client = true (and CLIENT's), needs_key, summary,
-- example, flag_text }, made a command that the parser and the help read as the core's own.
function M.command_of(name, usage)
  if type(usage) ~= "table" or type(usage.summary) ~= "string" or type(usage.example) ~= "string" then
    error(string_format("the command %s's usage: a table with its summary and example expected", name), 2)
  end
  local own, names = {}, {}
  for _, f in ipairs(usage.flags or {}) do
    own[f.name], names[#names + 1] = f, f.name
  end
  return { args = usage.args or {}, flags = flags(names, usage.client and CLIENT or {}), own = own,
    needs_key = usage.needs_key, summary = usage.summary, example = usage.example, flag_text = usage.flag_text }
end

-- The rock's command name made one of COMMANDS, which the command line then parses and runs as the core's own.
function M.add(name, usage)
  COMMANDS[name] = M.command_of(name, usage)
  return COMMANDS[name]
end

-- A flag of command c: its own (a rock's command), else FLAG's row.
function M.flag_of(c, fname)
  return c.own and c.own[fname] or FLAG[fname]
end

-- --------------------------------------------------------------- help

function M.hint(cmd)
  return string_format("Run '%s%s --help' for usage.", M.INVOKED, cmd and (" " .. cmd) or "")
end

-- Each core command's example, as its help shows it.
M.EXAMPLES = {
  create = "starvideos create --model videos --prompt 'a cat surfing' --duration 5",
  status = "starvideos status video_123",
  wait = "starvideos wait video_123 --interval 10 --out cat.mp4",
  download = "starvideos download video_123 cat.mp4",
  generate = "starvideos generate --model videos_fast --prompt 'a cat' --duration 5 --out cat.mp4",
  batch = "starvideos batch --prompts-file prompts.txt --out-dir videos/ --model videos --duration 5",
  models = "starvideos models --json",
  validate = "starvideos validate --model videos --prompt 'a cat' --duration 5 --ref-image https://x/1.png",
  check = "starvideos check --model videos --prompt 'a cat' --duration 5 --ref-video https://example.com/v.mp4",
  resume = "starvideos resume --journal tasks.jsonl --dir videos/",
  keep = "starvideos keep --journal tasks.jsonl --dir videos/ --timeout 3600",
  pending = "starvideos pending --journal tasks.jsonl --json",
  list = "starvideos list --journal tasks.jsonl --state completed",
  again = "starvideos again video_123 --prompt 'the same fox, at night' --out night.mp4 --journal tasks.jsonl",
  remix = "starvideos remix video_123 --prompt 'as a cartoon' --out cartoon.mp4 --journal tasks.jsonl",
  continue = "starvideos continue video_123 --last-image https://example.com/end.png --prompt 'she walks on' "
    .. "--out shot2.mp4 --journal tasks.jsonl",
  film = "starvideos film storyboard.json --out film.mp4 --journal tasks.jsonl --dry-run",
  spend = "starvideos spend --journal tasks.jsonl --prices '{\"videos\": 0.4}' --spend-limit "
    .. "'{\"amount\": 5, \"per\": \"day\", \"scope\": \"model\", \"model\": \"videos\"}'",
  compact = "starvideos compact --journal tasks.jsonl",
  verify = "starvideos verify film.mp4",
  completion = "starvideos completion bash > ~/.local/share/bash-completion/completions/starvideos",
}

-- A reference flag's value as the library takes it: a URL (scheme://...), else a local file's path, {file = path}.
local function reference(v)
  if v:find("^%a[%w+.-]*://") then return v end
  return { file = v }
end

-- The request parameters the flags name, as the library takes them.
function M.request_params(opts)
  local p = {}
  for _, fname in ipairs(REQUEST) do
    local v, f = opts[fname], FLAG[fname]
    if v ~= nil and f.ref and f.kind == "list" then
      local list = {}
      for i, r in ipairs(v) do list[i] = reference(r) end
      v = list
    elseif v ~= nil and f.ref then
      v = reference(v)
    end
    if v ~= nil and f.field then p[f.field] = v end
  end
  return p
end

return M
