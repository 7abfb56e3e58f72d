-- The hand-kept part of types/starvideos.lua (tools/types.lua): what no table of
-- the library holds: here each option's type and line (the names are
-- config.lua's: CLIENT and CALLS) and the option tables' fields' lines.
-- tools/types.lua refuses a name of those tables that has no entry here, and an
-- entry here that names nothing there.
--
-- An option: { type, line[, the config.DEFAULTS key of its default] }.  The
-- signatures (tools/types/shapes.lua): { line, params = { {name, type}, ... },
-- returns = { {type, name}, ... } }, a type "@create" the options class of
-- config.CALLS.create.  The classes: tools/types/classes.lua.

local A = {}

-- The options of starvideos.new (config.CLIENT): the default of DEFAULTS' key of its name is added.
A.CLIENT = {
  api_key = { "string", "the API key (else $STARVIDEOS_API_KEY)" },
  base_url = { "string", "the API's base URL, http(s)://host[:port][/path] (else $STARVIDEOS_BASE_URL)" },
  timeout = { "number", "seconds of one HTTP exchange; a download: seconds without a byte" },
  connect_timeout = { "number", "seconds to connect" },
  max_retries = { "integer", "retries of one API request, 0 to 10" },
  journal = { "string", "the ledger on a JSON-lines file (not with store)" },
  sleep = { "fun(seconds: number)", "every pause of a blocking call goes through it" },
  on_event = { "fun(event: starvideos.Event)", "called with every event of the client" },
  ca_file = { "string", "PEM certificate authorities for https (outside nginx)" },
  max_connections = { "integer", "exchanges of the key open at once, 1 to 1024" },
  retry_backoff = { "number", "seconds before the first retry, doubled at each next one" },
  max_retry_wait = { "number", "the longest Retry-After honoured, in seconds" },
  user_agent = { "string", "the User-Agent header" },
  requests_per_second = { "number", "the key's budget: creates, polls and retries together" },
  min_interval = { "number", "seconds: the closest two polls of one task may be" },
  interval = { "number", "seconds between polls until the schedule has learned" },
  create_limit = { "starvideos.Limit", "at most count creates in any per seconds" },
  tenant_limit = { "starvideos.Limit", "at most count creates of one tenant in any per seconds" },
  prices = { "table<starvideos.Model, number>", "the price of one create of each model" },
  failed_prices = { "table<starvideos.Model, number>",
    "what a task that fails at the service costs, per model (default: its full price)" },
  spend_limit = { "starvideos.SpendLimit|starvideos.SpendLimit[]", "caps on money: a create past one is refused" },
  tenant_weights = { "table<string, number>", "each tenant's share of a queue's creates (default 1 each)" },
  tz_offset = { "number|string", 'the calendar of spend limits: hours from UTC (5.5) or "+HH:MM"' },
  store = { "string|starvideos.Store", "the ledger and the key's budget on Redis (not with journal)" },
  proxy = { "string", "an HTTP proxy, http://[user:password@]host:port" },
  log = { '"debug"|"info"|fun(line: string)', "one line per event" },
  notify = { "starvideos.Notify", "a signed webhook when a task completes or fails" },
  failure_patterns = { "starvideos.FailurePattern[]", "your texts of a failure and their reasons, tried first" },
  lease = { "number", "seconds a process's lease on its tasks in a store lasts" },
  storage = { "starvideos.Storage", "the S3-compatible store of s3:// outs and local references" },
  preflight = { 'boolean|"strict"', "check reference media before a create" },
  provenance = { "boolean|starvideos.Provenance", "each saved video's provenance record beside it, PATH.json; "
    .. "{sign_key = PATH or starvideos.sign_key's key}: signed" },
  mark = { "boolean", "each saved MP4's XMP mark inside it (made by a trained algorithm); false: its served bytes" },
  allow_private_media = { "boolean", "allow reference URLs on non-public addresses" },
  min_image_side = { "number", "px: a reference image with a shorter side under it is refused" },
  metrics = { "boolean", "count requests, creates, tasks, videos, bytes for client:metrics" },
  trace = { "starvideos.Trace|false", "a span per task, exported as OTLP/HTTP JSON; false: off" },
  transport = { "table", "a transport object (docs/architecture.md)" },
  keepalive_timeout = { "number", "inside nginx: seconds a kept-alive connection may idle (lua-resty-http's name)" },
  keepalive_pool = { "integer", "inside nginx: connections kept per host and port, 1 to 1024 (default: "
    .. "max_connections)" },
}

-- The options of a client's calls (config.CALLS), by name; CALLS_BY[call][name] where a call's differs.
A.CALLS = {
  interval = { "number", "seconds between polls, fixed (default: the learned schedule)" },
  timeout = { "number", "seconds for the whole call", "wait_timeout" },
  on_progress = { "fun(event: starvideos.Event)", "called with the call's status and progress events" },
  sleep = { "fun(seconds: number)", "the pauses of this call (default: the client's)" },
  out = { "string", "the file for the video" },
  key = { "string", "with a ledger, the task's key: a rerun of it never pays twice" },
  fresh = { "boolean", "true: create even when the ledger knows a task of the key" },
  resend = { "boolean", "true: send it even when the same create failed for policy or input before" },
  fallback = { "string[]", "models tried in turn after a task failed for service or unknown" },
  tenant = { "string", "the tenant the create is for" },
  traceparent = { "string", "a W3C traceparent: the parent of the task's span" },
  journal = { "string", "another journal than the client's" },
  dir = { "string", "the folder of the videos without a recorded out (default \".\")" },
  dry_run = { "boolean", "true: return what it would do (a plan), sending nothing" },
  resume_limit = { "integer", "attempts after the first, 0 to 100", "resume_limit" },
  job = { "boolean", "true: a job at once, moved by client:step (the call's value its job.result)" },
  priority = { "integer", "a queued entry's priority, 1 (first) to 5 (last), default 3" },
}
A.CALLS_BY = {
  download = { timeout = { "number", "seconds for the whole download", "download_timeout" },
    mark = { "boolean", "false: the video saved unmarked, its served bytes (default: the client's mark)" },
    on_progress = { "fun(event: starvideos.ProgressEvent)", "called with progress events" } },
  generate_all = {
    out = { "string|fun(i: integer, params: starvideos.Params): string",
      'the files: a pattern with one %d ("videos/%04d.mp4"), or a function' },
    key = { "fun(i: integer, params: starvideos.Params): string", "the key of an entry without a file" },
    timeout = { "number", "seconds for each entry, from its start", "wait_timeout" } },
  submit = { out = { "string|fun(i: integer, params: starvideos.Params): string",
    "each entry's out, its key in the queue: a pattern with one %d, or a function" } },
  wait_all = { out_dir = { "string", "each completed task's video saved in this folder" },
    timeout = { "number", "seconds for each task", "wait_timeout" } },
  resume = { timeout = { "number", "seconds for each task", "wait_timeout" } },
  job = { on_status = { "fun(job: starvideos.Job)", "called at each change of the task's status and at the end" },
    timeout = { "number", "seconds for the whole job", "wait_timeout" } },
  keep = { lease = { "number", "keep looks every lease / 6 seconds (default: the client's lease)" },
    notify = { "starvideos.Notify", "the webhook of the tasks it carries, in place of the client's" },
    once = { "boolean", "true: carry what is orphaned at the first look, then return" },
    timeout = { "number", "seconds keep runs (default: until the client is closed)" } },
  spend = { tenant = { "string", "a limit of every tenant: this tenant's entry only" } },
  sse = { tenant = { "string", "only the events of this tenant's tasks" },
    task = { "string", "only the events of this task id" },
    heartbeat = { "number", "seconds between comments written when nothing else was", "heartbeat" },
    write = { "fun(chunk: string): any", "given each chunk; nil or false ends the stream (needed outside nginx)" },
    last_event_id = { "integer|string", "the id the reader saw last (inside nginx: else Last-Event-ID)" } },
  film = { out = { "string", "the film's file (each shot's: <out>.shotNN.mp4)" },
    dry_run = { "boolean", "true: return its plan (each shot's file and action, creates, cost), sending nothing" },
    timeout = { "number", "seconds for each shot", "wait_timeout" } },
  tasks = { state = { "starvideos.RecordState", "only the tasks of this state" },
    check = { "boolean", "true: read each downloaded file again" },
    tenant = { "string", "only the tasks and creates of this tenant" },
    parent = { "string", "only the tasks made from this one (again, remix, continue)" } },
}

-- The option tables of the options, each field's line (the names from config.lua and store_url.lua).
A.LIMIT = { count = "the creates allowed, 1 to 1e9", per = "the window, in seconds, 1 to 31622400" }
A.STORAGE = { endpoint = "the S3 endpoint (else $AWS_ENDPOINT_URL)", region = "the region (else $AWS_REGION)",
  access_key = "the access key id", secret_key = "the secret key", session_token = "a session token",
  path_style = "true: path-style URLs", refs = "the s3://bucket/prefix/ local references are put under",
  keep_refs = "true: keep the local references' objects after their task" }
A.STORE = { url = { "string", "the store's URL (redis://, rediss://, unix://, redis+sentinel://, ...)" },
  ca_file = { "string", "TLS: the certificate authorities" }, cert_file = { "string", "TLS: the client certificate" },
  key_file = { "string", "TLS: the client key" }, verify = { "boolean", "TLS: false skips the checks" },
  server_name = { "string", "TLS: the server's name" }, sentinel_user = { "string", "the sentinels' user" },
  sentinel_password = { "string", "the sentinels' password" },
  replicas = { "integer", "replicas a record naming a paid task waits for, 0 to 100" },
  replica_timeout = { "number", "seconds one such wait takes at most" },
  key_locking = { "boolean", "true: each script opens with Upstash's #!lua flags=allow-key-locking" } }

return A
