-- The hand-kept part of types/starvideos.lua (tools/types.lua), continued: the
-- shapes no table of the library holds (docs/reference.md's tasks, jobs,
-- errors, events and what the calls return), in the order they are written.
-- Each: { name, line, fields = { {name, type, line[, DEFAULTS key]}, ... }[, methods = { {name,
-- line}, ... }] }; a field's name ending in ? is optional.  Events: EVENTS, each { type, line, fields }.

local C = {}

C.CLASSES = {
  { "Task", "a task: the service's JSON object as a Lua table, without nulls", fields = {
    { "id", "string", "the task's id" }, { "object", "string", "the object's kind" },
    { "created", "integer", "Unix seconds of its create" }, { "model", "starvideos.Model", "its model" },
    { "status", "starvideos.TaskStatus", "its status" },
    { "video_url?", "string", "the video's temporary URL, once completed" },
    { "actualDuration?", "number", "the video's seconds, once completed" },
    { "error?", "any", "why it failed, once failed" },
    { "path?", "string", "the file generate saved it to" }, { "sha256?", "string", "that file's SHA-256" },
    { "warnings?", "starvideos.Warning[]", "what the service will ignore of its params (create, start, generate)" },
    { "parent?", "string", "the task it was made from (again, remix, continue)" },
    { "relation?", '"again"|"remix"|"continue"', "how it was made from its parent" },
  } },
  { "Warning", "what the service will ignore of a request (docs/reference.md#warnings)", fields = {
    { "field", "string", "the param ignored" }, { "because", "string", "the param beside it that makes it so" },
    { "message", "string", "the sentence a person reads" } } },
  { "IgnoredRule", "a row of a model's ignored table", fields = {
    { "field", "string", "the param ignored" }, { "when", "string", "the param beside it" },
    { "why", "string", "what the service does instead" } } },
  { "LocalFile", "a local file where a reference URL goes: put into the bucket of storage", fields = {
    { "file", "string", "the file's path" } } },
  { "DurationRule", "a model's durations", fields = {
    { "min", "integer", "seconds at least" }, { "max", "integer", "seconds at most" },
    { "required", "boolean", "whether a request must give one" },
    { "default?", "integer", "the duration without one asked" } } },
  { "Notify", "a signed webhook when a task completes or fails", fields = {
    { "url", "string", "where it is sent" }, { "secret", "string", "whsec_<base64>: the signing secret" },
    { "retry_for?", "number", "seconds it is retried, 0 to 604800", "retry_for" } } },
  { "Provenance", "signed provenance records (docs/lineage.md)", fields = {
    { "sign_key", "string|starvideos.SignKey", "the path of an Ed25519 private key in PEM, or a key "
      .. "starvideos.sign_key read (else $STARVIDEOS_SIGN_KEY)" } } },
  { "SignKey", "an Ed25519 private key starvideos.sign_key read (held in C; tostring names its key_id alone)",
    fields = { { "key_id", "string", "the hex SHA-256 of its raw public key" } } },
  { "FailurePattern", "a text of the service's failures and its reason (docs/failures.md)", fields = {
    { "match", "string", "a Lua pattern of the text" },
    { "reason", "starvideos.FailureReason", "why: policy, input, service or unknown" },
    { "input?", "string", "the field it names: prompt, first_image, ..." } } },
  { "Trace", "OpenTelemetry's settings (else $OTEL_*)", fields = {
    { "endpoint?", "string", "the OTLP/HTTP traces endpoint" },
    { "headers?", "table<string, string>", "headers of every export" },
    { "service_name?", "string", "the service's name" } } },
  { "VerifyOpts", "the options of starvideos.verify_webhook", fields = {
    { "tolerance?", "number", "seconds a timestamp may be from now", "tolerance" } } },
  { "Eta", "the seconds left as of the last answer", fields = {
    { "p50", "number", "half of the tasks of its kind ended within it" },
    { "p90", "number", "nine in ten ended within it" } } },
  { "Job", "a non-blocking job (client:start, client:watch; again, remix, continue and film with opts.job): plain "
    .. "data, read at any time", fields = {
    { "state", "starvideos.JobState", "where the job is" },
    { "status?", "starvideos.TaskStatus", "the task's status, nil before the first answer" },
    { "id?", "string", "the task's id" }, { "task?", "starvideos.Task", "the task as last seen" },
    { "eta?", "starvideos.Eta", "the seconds left as of the last answer" },
    { "bytes?", "integer", "the download's bytes so far" }, { "total?", "integer", "the video's bytes, once known" },
    { "path?", "string", "the file, once downloaded" }, { "sha256?", "string", "its SHA-256" },
    { "done", "boolean", "true once the job ended" }, { "err?", "starvideos.Error", "the error it ended with" },
    { "result?", "starvideos.Task|starvideos.Film|starvideos.FilmPlan", "again, remix, continue, film: what the "
      .. "blocking call returns, once the job ended well" },
    { "shot?", "integer", "a film's: the shot being made" },
    { "shots?", "starvideos.Task[]", "a film's: its shots' tasks, once made" } },
    methods = { { "cancel", "Stops the job; a create already sent is not taken back (err.created)." } } },
  { "Error", "a failure: tostring(err) is kind: message", fields = {
    { "kind", "starvideos.ErrorKind", "what failed" }, { "message", "string", "what went wrong, for a person" },
    { "field?", "string", "the culprit: a parameter, an option or an argument" },
    { "status?", "integer", "the HTTP status, when there was an answer" },
    { "retry_after?", "number", "seconds: Retry-After, until create_limit allows a create, or a spend window's end" },
    { "task?", "starvideos.Task", "the last known task" }, { "id?", "string", "its id" },
    { "reason?", "starvideos.FailureReason", "a failed task's or a refused create's: why (failures.md)" },
    { "input?", "string", "the field the service's words named" },
    { "maybe_created?", "boolean", "true on a create the server may have taken: never sent again" },
    { "created?", "boolean", "true when the server surely made the task although the call failed" },
    { "transient?", "boolean", "true when the same call may succeed later" },
    { "check?", "string", "the download check that failed (protocol)" },
    { "pending?", "string", "a create sent and never answered: the id pending --forget takes" },
    { "tenant?", "string", "the tenant over tenant_limit or over its spend limit" },
    { "limit?", "starvideos.SpendLimit", "spend_limited: the limit, as given in spend_limit" },
    { "spent?", "number", "spend_limited: what its window has spent, reservations included" },
    { "amount?", "number", "spend_limited: the limit's amount" },
    { "model?", "starvideos.Model", "spend_limited: the model of a limit of scope model" },
    { "request_id?", "string", "the X-Request-Id sent on the last attempt (a create's or query's)" },
    { "server_request_id?", "string", "the server's own id of that request (x-request-id, request-id, cf-ray)" },
    { "interrupted?", "boolean", "true on the timeout a blocking call raises after Ctrl-C cancelled its jobs" } } },
  { "Result", "one entry's outcome (generate_all, wait_all, resume, keep)", fields = {
    { "task?", "starvideos.Task", "the task" }, { "err?", "starvideos.Error", "why it failed" },
    { "path?", "string", "the file saved" }, { "sha256?", "string", "its SHA-256" },
    { "saved_to?", '"out"|"dir"', "resume and keep: the recorded out, or the dir" } } },
  { "Plan", "what generate_all would do (client:plan; resume and keep with dry_run)", fields = {
    { "entries", "starvideos.PlanEntry[]", "one per entry of the list" },
    { "creates", "integer", "the entries that create (paid)" }, { "downloads", "integer", "those that download" },
    { "by_model", "table<starvideos.Model, starvideos.PlanModel>", "creates and cost of each model" },
    { "refused", "integer", "the creates a spend limit would refuse (reason \"spend_limited\")" },
    { "cost?", "number", "the creates' prices summed, nil when one is unknown" } } },
  { "Submitted", "a batch queued (client:submit)", fields = {
    { "batch", "string", "its id (client:batch's)" }, { "queued", "integer", "entries recorded queued" },
    { "known", "integer", "entries whose out the ledger knew already, not queued again" } } },
  { "BatchCounts", "a batch's entries now (client:batch)", fields = {
    { "queued", "integer", "not yet taken" }, { "created", "integer", "their create asked, not saved yet" },
    { "saved", "integer", "saved to their out" }, { "failed", "integer", "ended without a video" },
    { "total", "integer", "every entry" } } },
  { "PlanModel", "a model's part of a plan", fields = {
    { "creates", "integer", "its creates" }, { "cost?", "number", "their prices summed, nil when unknown" } } },
  { "PlanEntry", "one entry of a plan", fields = {
    { "index", "integer", "its position in the list" }, { "action", '"create"|"download"|"none"', "what is done" },
    { "reason", "string", 'why: "new", "failed before", "saved", "refused", "spend_limited", ...' },
    { "model?", "starvideos.Model", "the model" }, { "price?", "number", "a create's price (nil: unknown)" },
    { "id?", "string", "the task of its key" }, { "out?", "string", "its file" }, { "key?", "string", "its key" },
    { "err?", "starvideos.Error", "why it is refused" },
    { "saved_to?", '"out"|"dir"', "resume: where it would be saved" },
    { "from?", "string", "keep: the owner it would be taken from" },
    { "warnings?", "starvideos.Warning[]", "what the service will ignore of its params" } } },
  { "TaskRecord", "a task or create of the ledger (client:tasks)", fields = {
    { "id?", "string", "the task's id (nil for a create with no task)" },
    { "local?", "string", "a pending or abandoned create's local id" },
    { "state", "starvideos.RecordState", "where it is" },
    { "status?", "starvideos.TaskStatus", "the last status recorded" },
    { "error?", "any", "a failed task's error, as the service said it" },
    { "key?", "string", "the job's key" }, { "out?", "string", "the file its create asked for" },
    { "created_at?", "number", "Unix seconds of the create" }, { "path?", "string", "the file downloaded" },
    { "bytes?", "integer", "its size" }, { "sha256?", "string", "its SHA-256" },
    { "check?", '"ok"|"missing"|"changed"', "with check = true: the file against the record" },
    { "check_error?", "string", "why it is not ok" }, { "model?", "starvideos.Model", "the model" },
    { "prompt?", "string", "the prompt's first characters" }, { "tenant?", "string", "the tenant its create named" },
    { "cost?", "number", "its model's price at its create (nil: unknown)" },
    { "refs?", "string[]", "the s3:// URLs of its local references still in the bucket" },
    { "parent?", "string", "the task it was made from (again, remix, continue)" },
    { "relation?", '"again"|"remix"|"continue"', "how it was made from its parent" },
    { "duration?", "integer", "the seconds its create asked" },
    { "body?", "string", "its create's JSON body as sent (again's params)" },
    { "reason?", "starvideos.FailureReason", "a failed task's: why" },
    { "input?", "string", "a failed task's: the field its words named" } } },
  { "PendingCreate", "a create whose answer never came", fields = {
    { "local", "string", "the create's id in the journal" }, { "model", "starvideos.Model", "its model" },
    { "prompt_hash", "string", "a hash of its prompt" }, { "time", "number", "Unix seconds when it was sent" } } },
  { "RateLimit", "the last rate limit the service's answers said (client:rate_limit)", fields = {
    { "limit?", "number", "requests in the window" }, { "remaining?", "number", "requests left in it" },
    { "reset?", "number", "seconds until it resets, as of at" }, { "window?", "number", "the window, seconds" },
    { "family?", '"ratelimit"|"x-ratelimit"', "the headers read (absent: a 429's Retry-After alone)" },
    { "retry_after?", "number", "a 429's Retry-After, seconds" }, { "at", "number", "Unix seconds of the answer" } } },
  { "SpendLimit", "a cap on money (spend_limit)", fields = {
    { "amount", "number", "the most the creates it covers may cost in a window, in prices' units" },
    { "per?", 'number|"day"|"month"', "the window: seconds, a calendar day or month (nil: the ledger's life)" },
    { "scope?", '"key"|"tenant"|"model"', "what it covers (default key)" },
    { "model?", "starvideos.Model", "scope model: the model" },
    { "tenant?", "string", "scope tenant: one tenant (nil: every tenant its own)" } } },
  { "Spend", "a spend limit in its window (client:spend)", fields = {
    { "limit", "starvideos.SpendLimit", "the limit" }, { "scope", '"key"|"tenant"|"model"', "what it covers" },
    { "model?", "starvideos.Model", "its model" }, { "tenant?", "string", "its tenant" },
    { "spent", "number", "the price of the creates made in the window" },
    { "reserved", "number", "the price of the creates asked, not yet answered" },
    { "amount", "number", "the limit's amount" },
    { "resets_at?", "number", "Unix seconds of the window's end (nil: the ledger's life)" },
    { "window_start?", "number", "Unix seconds of the window's start" } } },
  { "Film", "a film made (client:film)", fields = {
    { "path", "string", "the film's file" }, { "shots", "starvideos.Task[]", "each shot's task, in order" },
    { "copied", "boolean", "true: joined by a stream copy; false: re-encoded" },
    { "bytes?", "integer", "the film's size, when its out is an object (s3://): its provenance record's" },
    { "provenance_error?", "string", "why the film's provenance record was not written (the film is made)" } } },
  { "FilmPlan", "what client:film would make (dry_run)", fields = {
    { "shots", "starvideos.FilmShot[]", "each shot" }, { "creates", "integer", "the creates it would send" },
    { "cost?", "number", "their price, when every price is known" } } },
  { "FilmShot", "a shot of a film's plan", fields = {
    { "index", "integer", "its place" }, { "path", "string", "its file" },
    { "action", '"create"|"download"|"none"', "create; download: its task created before, followed; none: its file "
      .. "is made already" },
    { "model?", "starvideos.Model", "the model it takes (a continue's or a remix's: that of the shot it builds on, "
      .. "unless given)" }, { "continues", "boolean", "it continues the shot before" },
    { "remixes?", "integer", "the shot whose video it takes as a reference video" } } },
  { "Note", "what client:check could not check", fields = {
    { "field", "string", "the reference, e.g. referenceVideos[2]" }, { "message", "string", "why" } } },
}

local TASK = { { "id", "string", "the task's id" }, { "task", "starvideos.Task", "the task" },
  { "status", "starvideos.TaskStatus", "its status" },
  { "index?", "integer", "its position in wait_all's, generate_all's or resume's list" } }
local REQUEST = { { "request", "integer", "its number in the process" }, { "attempt", "integer", "the attempt" },
  { "method", "string", "the HTTP method" }, { "path", "string", "the URL's path" },
  { "request_id?", "string", "the attempt's X-Request-Id (an API request's)" },
  { "server_request_id?", "string", "the server's own id of the attempt's answer (response, retry)" } }

local function with(base, more)
  local all = {}
  for _, f in ipairs(base) do all[#all + 1] = f end
  for _, f in ipairs(more) do all[#all + 1] = f end
  return all
end

C.EVENTS = {
  { "status", "the task's status changed (on_progress: every answer)",
    fields = with(TASK, { { "eta?", "starvideos.Eta", "the job's, as of this answer" },
      { "reason?", "starvideos.FailureReason", "once the task failed: why" },
      { "input?", "string", "once the task failed: the field its words named" } }) },
  { "created", "the create was answered: the task exists (on_event only)", fields = TASK },
  { "saved", "the task's video is whole at its out (on_event only)", fields = with(TASK, {
    { "path", "string", "the file (or object URL)" }, { "sha256", "string", "its SHA-256" } }) },
  { "failed", "a job following a task to its end ended with an error (on_event only)", fields = with(TASK, {
    { "error", "starvideos.Error", "why: its message, kind, reason" }, { "message", "string", "the error's words" },
    { "reason?", "starvideos.FailureReason", "why, where known" },
    { "input?", "string", "the field the words named" } }) },
  { "taken", "a keeper took the job's task while this process's lease had lapsed",
    fields = with(TASK, { { "by", "string", "the keeper's id" } }) },
  { "late", "the task runs longer than 99% of the learned tasks of its kind",
    fields = with(TASK, { { "elapsed", "number", "seconds since its create" }, { "p99", "number", "seconds" } }) },
  { "progress", "a download received more bytes", fields = with(TASK, { { "bytes", "integer", "bytes so far" },
    { "total?", "integer", "the video's bytes (nil: unknown)" }, { "path", "string", "the file" } }) },
  { "request", "an exchange started", fields = REQUEST },
  { "response", "an exchange ended with a whole HTTP answer", fields = with(REQUEST, {
    { "status", "integer", "the HTTP status" }, { "elapsed", "number", "seconds" } }) },
  { "retry", "a request will be tried again", fields = with(REQUEST, { { "status?", "integer", "the HTTP status" },
    { "delay", "number", "seconds" }, { "reason", "string", "why" } }) },
  { "warning", "something said once", fields = { { "message", "string", "what" },
    { "path?", "string", "the journal, for its unreadable lines" },
    { "field?", "string", '"spend_limit" for a spend limit crossing a step' },
    { "limit?", "starvideos.SpendLimit", "that limit, as given" },
    { "percent?", "integer", "the step crossed: 50, 80 or 100" },
    { "tenant?", "string", "the tenant of a limit of scope tenant" } } },
  { "journal_error", "a record could not be written to the journal", fields = {
    { "path", "string", "the journal" }, { "message", "string", "what" } } },
  { "store_reset", "the store lost its data; the unsettled tasks were recorded again", fields = {
    { "where", "string", "the store" }, { "tasks", "integer", "tasks recorded again" },
    { "creates", "integer", "creates counted again" }, { "message", "string", "what" } } },
  { "claim", "keep took a task whose owner let go", fields = { { "id", "string", "the task's id" },
    { "from", "string", "the owner it came from" }, { "path", "string", "where it will be saved" },
    { "saved_to", '"out"|"dir"', "which of the two" } } },
  { "preflight", "a reference's check could not be made; the create goes on", fields = {
    { "id?", "string", "nil" }, { "field", "string", "the reference, e.g. referenceVideos[2]" },
    { "message", "string", "why" } } },
  { "delivery", "a webhook delivery ended", fields = { { "id", "string", "the task's id" },
    { "webhook_id", "string", "the delivery's id" }, { "outcome", '"delivered"|"refused"|"owed"', "how it ended" },
    { "status?", "integer", "the receiver's HTTP status" }, { "reason?", "string", "why" } } },
  { "batch", "generate_all's on_progress: after every change", fields = {
    { "created", "integer", "entries with a task" }, { "done", "integer", "entries completed" },
    { "failed", "integer", "entries that failed" },
    { "cancelled", "integer", "entries cancelled (Ctrl-C, close)" },
    { "refused", "integer", "of the failed, those a spend limit refused (nothing sent)" },
    { "total", "integer", "entries" } } },
}

return C
