---@meta starvideos
-- LuaCATS annotations of starvideos' public API (docs/reference.md), for
-- lua-language-server and the editors on it (docs/reference.md#editors).
-- Made by tools/types.lua (`make types`) from lua/starvideos/config.lua's option
-- tables, the loaded module and the core's lists, with tools/types/*.lua for
-- what no table holds: do not edit; spec/types_spec.lua checks it.

---@alias starvideos.Model
---| "starvideos_o3"
---| "videos"
---| "videos_fast"
---| "videos_stable"
---| "videos_stable_fast"
---@alias starvideos.Ratio
---| "16:9"
---| "1:1"
---| "21:9"
---| "3:4"
---| "4:3"
---| "9:16"
---@alias starvideos.Resolution
---| "720p"
---@alias starvideos.ErrorKind
---| "invalid_request"
---| "auth"
---| "not_found"
---| "rate_limited"
---| "spend_limited"
---| "server"
---| "network"
---| "timeout"
---| "task_failed"
---| "protocol"
---| "io"
---| "refused_before"
---@alias starvideos.RecordState
---| "abandoned"
---| "completed"
---| "created"
---| "downloaded"
---| "failed"
---| "pending"
---@alias starvideos.TaskStatus
---| "queued"
---| "processing"
---| "completed"
---| "failed"
---@alias starvideos.FailureReason
---| "input"
---| "policy"
---| "service"
---| "unknown"
---@alias starvideos.JobState
---| "creating"
---| "polling"
---| "downloading"
---| "confirming"
---| "done"
---| "cancelled"
---| "taken"
---| "preparing"
---| "joining"

---The options of starvideos.new (config.lua's CLIENT)
---@class starvideos.Options
---@field allow_private_media? boolean allow reference URLs on non-public addresses
---@field api_key? string the API key (else $STARVIDEOS_API_KEY)
---@field base_url? string the API's base URL, http(s)://host[:port][/path] (else $STARVIDEOS_BASE_URL)
---@field ca_file? string PEM certificate authorities for https (outside nginx)
---@field connect_timeout? number seconds to connect (default 10)
---@field create_limit? starvideos.Limit at most count creates in any per seconds
---@field failed_prices? table<starvideos.Model, number> what a task that fails at the service costs, per model (default: its full price)
---@field failure_patterns? starvideos.FailurePattern[] your texts of a failure and their reasons, tried first
---@field interval? number seconds between polls until the schedule has learned (default 30)
---@field journal? string the ledger on a JSON-lines file (not with store)
---@field keepalive_pool? integer inside nginx: connections kept per host and port, 1 to 1024 (default: max_connections)
---@field keepalive_timeout? number inside nginx: seconds a kept-alive connection may idle (lua-resty-http's name) (default 60)
---@field lease? number seconds a process's lease on its tasks in a store lasts (default 30)
---@field log? "debug"|"info"|fun(line: string) one line per event
---@field mark? boolean each saved MP4's XMP mark inside it (made by a trained algorithm); false: its served bytes (default true)
---@field max_connections? integer exchanges of the key open at once, 1 to 1024 (default 16)
---@field max_retries? integer retries of one API request, 0 to 10 (default 2)
---@field max_retry_wait? number the longest Retry-After honoured, in seconds (default 60)
---@field metrics? boolean count requests, creates, tasks, videos, bytes for client:metrics
---@field min_image_side? number px: a reference image with a shorter side under it is refused
---@field min_interval? number seconds: the closest two polls of one task may be (default 5)
---@field notify? starvideos.Notify a signed webhook when a task completes or fails
---@field on_event? fun(event: starvideos.Event) called with every event of the client
---@field preflight? boolean|"strict" check reference media before a create (default true)
---@field prices? table<starvideos.Model, number> the price of one create of each model
---@field provenance? boolean|starvideos.Provenance each saved video's provenance record beside it, PATH.json; {sign_key = PATH or starvideos.sign_key's key}: signed (default true)
---@field proxy? string an HTTP proxy, http://[user:password@]host:port
---@field requests_per_second? number the key's budget: creates, polls and retries together (default 10)
---@field retry_backoff? number seconds before the first retry, doubled at each next one (default 0.5)
---@field sleep? fun(seconds: number) every pause of a blocking call goes through it
---@field spend_limit? starvideos.SpendLimit|starvideos.SpendLimit[] caps on money: a create past one is refused
---@field storage? starvideos.Storage the S3-compatible store of s3:// outs and local references
---@field store? string|starvideos.Store the ledger and the key's budget on Redis (not with journal)
---@field tenant_limit? starvideos.Limit at most count creates of one tenant in any per seconds
---@field tenant_weights? table<string, number> each tenant's share of a queue's creates (default 1 each)
---@field timeout? number seconds of one HTTP exchange; a download: seconds without a byte (default 30)
---@field trace? starvideos.Trace|false a span per task, exported as OTLP/HTTP JSON; false: off
---@field transport? table a transport object (docs/architecture.md)
---@field tz_offset? number|string the calendar of spend limits: hours from UTC (5.5) or "+HH:MM"
---@field user_agent? string the User-Agent header

---The options of client:create (config.lua's CALLS.create)
---@class starvideos.CreateOpts
---@field fresh? boolean true: create even when the ledger knows a task of the key
---@field key? string with a ledger, the task's key: a rerun of it never pays twice
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field tenant? string the tenant the create is for
---@field traceparent? string a W3C traceparent: the parent of the task's span

---The options of client:download (config.lua's CALLS.download)
---@class starvideos.DownloadOpts
---@field mark? boolean false: the video saved unmarked, its served bytes (default: the client's mark)
---@field on_progress? fun(event: starvideos.ProgressEvent) called with progress events
---@field resume_limit? integer attempts after the first, 0 to 100 (default 5)
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field timeout? number seconds for the whole download (default 3600)

---The options of client:film (config.lua's CALLS.film)
---@class starvideos.FilmOpts
---@field dry_run? boolean true: return its plan (each shot's file and action, creates, cost), sending nothing
---@field fallback? string[] models tried in turn after a task failed for service or unknown
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field job? boolean true: a job at once, moved by client:step (the call's value its job.result)
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field out? string the film's file (each shot's: <out>.shotNN.mp4)
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field tenant? string the tenant the create is for
---@field timeout? number seconds for each shot (default 1800)

---The options of client:generate (config.lua's CALLS.generate)
---@class starvideos.GenerateOpts
---@field fallback? string[] models tried in turn after a task failed for service or unknown
---@field fresh? boolean true: create even when the ledger knows a task of the key
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field key? string with a ledger, the task's key: a rerun of it never pays twice
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field out? string the file for the video
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field tenant? string the tenant the create is for
---@field timeout? number seconds for the whole call (default 1800)
---@field traceparent? string a W3C traceparent: the parent of the task's span

---The options of client:generate_all and client:plan (config.lua's CALLS.generate_all)
---@class starvideos.GenerateAllOpts
---@field fallback? string[] models tried in turn after a task failed for service or unknown
---@field fresh? boolean true: create even when the ledger knows a task of the key
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field key? fun(i: integer, params: starvideos.Params): string the key of an entry without a file
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field out? string|fun(i: integer, params: starvideos.Params): string the files: a pattern with one %d ("videos/%04d.mp4"), or a function
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field tenant? string the tenant the create is for
---@field timeout? number seconds for each entry, from its start (default 1800)
---@field traceparent? string a W3C traceparent: the parent of the task's span

---The options of client:start and client:watch (config.lua's CALLS.job)
---@class starvideos.JobOpts
---@field fresh? boolean true: create even when the ledger knows a task of the key
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field key? string with a ledger, the task's key: a rerun of it never pays twice
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field on_status? fun(job: starvideos.Job) called at each change of the task's status and at the end
---@field out? string the file for the video
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field tenant? string the tenant the create is for
---@field timeout? number seconds for the whole job (default 1800)
---@field traceparent? string a W3C traceparent: the parent of the task's span

---The options of client:keep (config.lua's CALLS.keep)
---@class starvideos.KeepOpts
---@field dir? string the folder of the videos without a recorded out (default ".")
---@field dry_run? boolean true: return what it would do (a plan), sending nothing
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field journal? string another journal than the client's
---@field lease? number keep looks every lease / 6 seconds (default: the client's lease)
---@field notify? starvideos.Notify the webhook of the tasks it carries, in place of the client's
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field once? boolean true: carry what is orphaned at the first look, then return
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field timeout? number seconds keep runs (default: until the client is closed)

---The options of client:again, client:continue and client:remix (config.lua's CALLS.lineage)
---@class starvideos.LineageOpts
---@field fallback? string[] models tried in turn after a task failed for service or unknown
---@field fresh? boolean true: create even when the ledger knows a task of the key
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field job? boolean true: a job at once, moved by client:step (the call's value its job.result)
---@field key? string with a ledger, the task's key: a rerun of it never pays twice
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field out? string the file for the video
---@field resend? boolean true: send it even when the same create failed for policy or input before
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field tenant? string the tenant the create is for
---@field timeout? number seconds for the whole call (default 1800)
---@field traceparent? string a W3C traceparent: the parent of the task's span

---The options of client:pending (config.lua's CALLS.pending)
---@class starvideos.PendingOpts
---@field journal? string another journal than the client's

---The options of client:resume (config.lua's CALLS.resume)
---@class starvideos.ResumeOpts
---@field dir? string the folder of the videos without a recorded out (default ".")
---@field dry_run? boolean true: return what it would do (a plan), sending nothing
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field journal? string another journal than the client's
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field timeout? number seconds for each task (default 1800)

---The options of client:spend (config.lua's CALLS.spend)
---@class starvideos.SpendOpts
---@field tenant? string a limit of every tenant: this tenant's entry only

---The options of client:sse (config.lua's CALLS.sse)
---@class starvideos.SseOpts
---@field heartbeat? number seconds between comments written when nothing else was (default 15)
---@field last_event_id? integer|string the id the reader saw last (inside nginx: else Last-Event-ID)
---@field task? string only the events of this task id
---@field tenant? string only the events of this tenant's tasks
---@field write? fun(chunk: string): any given each chunk; nil or false ends the stream (needed outside nginx)

---The options of client:submit (config.lua's CALLS.submit)
---@class starvideos.SubmitOpts
---@field out? string|fun(i: integer, params: starvideos.Params): string each entry's out, its key in the queue: a pattern with one %d, or a function
---@field priority? integer a queued entry's priority, 1 (first) to 5 (last), default 3
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field tenant? string the tenant the create is for

---The options of client:tasks (config.lua's CALLS.tasks)
---@class starvideos.TasksOpts
---@field check? boolean true: read each downloaded file again
---@field journal? string another journal than the client's
---@field parent? string only the tasks made from this one (again, remix, continue)
---@field state? starvideos.RecordState only the tasks of this state
---@field tenant? string only the tasks and creates of this tenant

---The options of client:wait and starvideos.wait (config.lua's CALLS.wait)
---@class starvideos.WaitOpts
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field timeout? number seconds for the whole call (default 1800)

---The options of client:wait_all (config.lua's CALLS.wait_all)
---@class starvideos.WaitAllOpts
---@field interval? number seconds between polls, fixed (default: the learned schedule)
---@field on_progress? fun(event: starvideos.Event) called with the call's status and progress events
---@field out_dir? string each completed task's video saved in this folder
---@field sleep? fun(seconds: number) the pauses of this call (default: the client's)
---@field timeout? number seconds for each task (default 1800)

---create_limit and tenant_limit (config.LIMIT)
---@class starvideos.Limit
---@field count integer the creates allowed, 1 to 1e9
---@field per number the window, in seconds, 1 to 31622400

---the storage option (storage/s3.lua's OPTION): every field optional
---@class starvideos.Storage
---@field access_key? string the access key id
---@field endpoint? string the S3 endpoint (else $AWS_ENDPOINT_URL)
---@field keep_refs? boolean true: keep the local references' objects after their task
---@field path_style? boolean true: path-style URLs
---@field refs? string the s3://bucket/prefix/ local references are put under
---@field region? string the region (else $AWS_REGION)
---@field secret_key? string the secret key
---@field session_token? string a session token

---the store option's table form (store_url.lua's FIELDS, and url)
---@class starvideos.Store
---@field ca_file? string TLS: the certificate authorities
---@field cert_file? string TLS: the client certificate
---@field key_file? string TLS: the client key
---@field key_locking? boolean true: each script opens with Upstash's #!lua flags=allow-key-locking
---@field replica_timeout? number seconds one such wait takes at most
---@field replicas? integer replicas a record naming a paid task waits for, 0 to 100
---@field sentinel_password? string the sentinels' password
---@field sentinel_user? string the sentinels' user
---@field server_name? string TLS: the server's name
---@field url string the store's URL (redis://, rediss://, unix://, redis+sentinel://, ...)
---@field verify? boolean TLS: false skips the checks

---a request (params of create, generate, start, validate; core.fields)
---@class starvideos.Params
---@field duration? integer seconds of video
---@field extra? table<string, any> sent as it is, for API additions
---@field first_image? string|starvideos.LocalFile the first frame
---@field image? string|starvideos.LocalFile first_image's older name
---@field lastFrameImage? string|starvideos.LocalFile last_image's older name
---@field last_image? string|starvideos.LocalFile the last frame
---@field model starvideos.Model the model
---@field prompt? string the prompt
---@field ratio? starvideos.Ratio the aspect ratio
---@field referenceAudios? (string|starvideos.LocalFile)[] reference audios
---@field referenceImages? (string|starvideos.LocalFile)[] reference images
---@field referenceVideos? (string|starvideos.LocalFile)[] reference videos
---@field resolution? starvideos.Resolution the resolution

---a model's capabilities (starvideos.models; the core's models)
---@class starvideos.ModelInfo
---@field default_ratio starvideos.Ratio the ratio without one asked
---@field duration starvideos.DurationRule its durations
---@field endpoint string its create endpoint's path
---@field ignored starvideos.IgnoredRule[] what the service ignores of a request (a warning each)
---@field legacy_aliases boolean whether image and lastFrameImage are taken
---@field max_audios integer reference audios at most
---@field max_images integer reference images at most
---@field max_images_with_video integer reference images at most beside a video
---@field max_videos integer reference videos at most
---@field name starvideos.Model the model's name
---@field prompt_max? integer characters of a prompt at most (nil: no limit)
---@field ratios starvideos.Ratio[] its ratios
---@field resolutions starvideos.Resolution[] its resolutions (empty: none is taken)

---a task: the service's JSON object as a Lua table, without nulls
---@class starvideos.Task
---@field id string the task's id
---@field object string the object's kind
---@field created integer Unix seconds of its create
---@field model starvideos.Model its model
---@field status starvideos.TaskStatus its status
---@field video_url? string the video's temporary URL, once completed
---@field actualDuration? number the video's seconds, once completed
---@field error? any why it failed, once failed
---@field path? string the file generate saved it to
---@field sha256? string that file's SHA-256
---@field warnings? starvideos.Warning[] what the service will ignore of its params (create, start, generate)
---@field parent? string the task it was made from (again, remix, continue)
---@field relation? "again"|"remix"|"continue" how it was made from its parent

---what the service will ignore of a request (docs/reference.md#warnings)
---@class starvideos.Warning
---@field field string the param ignored
---@field because string the param beside it that makes it so
---@field message string the sentence a person reads

---a row of a model's ignored table
---@class starvideos.IgnoredRule
---@field field string the param ignored
---@field when string the param beside it
---@field why string what the service does instead

---a local file where a reference URL goes: put into the bucket of storage
---@class starvideos.LocalFile
---@field file string the file's path

---a model's durations
---@class starvideos.DurationRule
---@field min integer seconds at least
---@field max integer seconds at most
---@field required boolean whether a request must give one
---@field default? integer the duration without one asked

---a signed webhook when a task completes or fails
---@class starvideos.Notify
---@field url string where it is sent
---@field secret string whsec_<base64>: the signing secret
---@field retry_for? number seconds it is retried, 0 to 604800 (default 600)

---signed provenance records (docs/lineage.md)
---@class starvideos.Provenance
---@field sign_key string|starvideos.SignKey the path of an Ed25519 private key in PEM, or a key starvideos.sign_key read (else $STARVIDEOS_SIGN_KEY)

---an Ed25519 private key starvideos.sign_key read (held in C; tostring names its key_id alone)
---@class starvideos.SignKey
---@field key_id string the hex SHA-256 of its raw public key

---a text of the service's failures and its reason (docs/failures.md)
---@class starvideos.FailurePattern
---@field match string a Lua pattern of the text
---@field reason starvideos.FailureReason why: policy, input, service or unknown
---@field input? string the field it names: prompt, first_image, ...

---OpenTelemetry's settings (else $OTEL_*)
---@class starvideos.Trace
---@field endpoint? string the OTLP/HTTP traces endpoint
---@field headers? table<string, string> headers of every export
---@field service_name? string the service's name

---the options of starvideos.verify_webhook
---@class starvideos.VerifyOpts
---@field tolerance? number seconds a timestamp may be from now (default 300)

---the seconds left as of the last answer
---@class starvideos.Eta
---@field p50 number half of the tasks of its kind ended within it
---@field p90 number nine in ten ended within it

---a non-blocking job (client:start, client:watch; again, remix, continue and film with opts.job): plain data, read at any time
---@class starvideos.Job
---@field state starvideos.JobState where the job is
---@field status? starvideos.TaskStatus the task's status, nil before the first answer
---@field id? string the task's id
---@field task? starvideos.Task the task as last seen
---@field eta? starvideos.Eta the seconds left as of the last answer
---@field bytes? integer the download's bytes so far
---@field total? integer the video's bytes, once known
---@field path? string the file, once downloaded
---@field sha256? string its SHA-256
---@field done boolean true once the job ended
---@field err? starvideos.Error the error it ended with
---@field result? starvideos.Task|starvideos.Film|starvideos.FilmPlan again, remix, continue, film: what the blocking call returns, once the job ended well
---@field shot? integer a film's: the shot being made
---@field shots? starvideos.Task[] a film's: its shots' tasks, once made
local Job = {}

---Stops the job; a create already sent is not taken back (err.created).
function Job:cancel() end

---a failure: tostring(err) is kind: message
---@class starvideos.Error
---@field kind starvideos.ErrorKind what failed
---@field message string what went wrong, for a person
---@field field? string the culprit: a parameter, an option or an argument
---@field status? integer the HTTP status, when there was an answer
---@field retry_after? number seconds: Retry-After, until create_limit allows a create, or a spend window's end
---@field task? starvideos.Task the last known task
---@field id? string its id
---@field reason? starvideos.FailureReason a failed task's or a refused create's: why (failures.md)
---@field input? string the field the service's words named
---@field maybe_created? boolean true on a create the server may have taken: never sent again
---@field created? boolean true when the server surely made the task although the call failed
---@field transient? boolean true when the same call may succeed later
---@field check? string the download check that failed (protocol)
---@field pending? string a create sent and never answered: the id pending --forget takes
---@field tenant? string the tenant over tenant_limit or over its spend limit
---@field limit? starvideos.SpendLimit spend_limited: the limit, as given in spend_limit
---@field spent? number spend_limited: what its window has spent, reservations included
---@field amount? number spend_limited: the limit's amount
---@field model? starvideos.Model spend_limited: the model of a limit of scope model
---@field request_id? string the X-Request-Id sent on the last attempt (a create's or query's)
---@field server_request_id? string the server's own id of that request (x-request-id, request-id, cf-ray)
---@field interrupted? boolean true on the timeout a blocking call raises after Ctrl-C cancelled its jobs

---one entry's outcome (generate_all, wait_all, resume, keep)
---@class starvideos.Result
---@field task? starvideos.Task the task
---@field err? starvideos.Error why it failed
---@field path? string the file saved
---@field sha256? string its SHA-256
---@field saved_to? "out"|"dir" resume and keep: the recorded out, or the dir

---what generate_all would do (client:plan; resume and keep with dry_run)
---@class starvideos.Plan
---@field entries starvideos.PlanEntry[] one per entry of the list
---@field creates integer the entries that create (paid)
---@field downloads integer those that download
---@field by_model table<starvideos.Model, starvideos.PlanModel> creates and cost of each model
---@field refused integer the creates a spend limit would refuse (reason "spend_limited")
---@field cost? number the creates' prices summed, nil when one is unknown

---a batch queued (client:submit)
---@class starvideos.Submitted
---@field batch string its id (client:batch's)
---@field queued integer entries recorded queued
---@field known integer entries whose out the ledger knew already, not queued again

---a batch's entries now (client:batch)
---@class starvideos.BatchCounts
---@field queued integer not yet taken
---@field created integer their create asked, not saved yet
---@field saved integer saved to their out
---@field failed integer ended without a video
---@field total integer every entry

---a model's part of a plan
---@class starvideos.PlanModel
---@field creates integer its creates
---@field cost? number their prices summed, nil when unknown

---one entry of a plan
---@class starvideos.PlanEntry
---@field index integer its position in the list
---@field action "create"|"download"|"none" what is done
---@field reason string why: "new", "failed before", "saved", "refused", "spend_limited", ...
---@field model? starvideos.Model the model
---@field price? number a create's price (nil: unknown)
---@field id? string the task of its key
---@field out? string its file
---@field key? string its key
---@field err? starvideos.Error why it is refused
---@field saved_to? "out"|"dir" resume: where it would be saved
---@field from? string keep: the owner it would be taken from
---@field warnings? starvideos.Warning[] what the service will ignore of its params

---a task or create of the ledger (client:tasks)
---@class starvideos.TaskRecord
---@field id? string the task's id (nil for a create with no task)
---@field ["local"] string? a pending or abandoned create's local id
---@field state starvideos.RecordState where it is
---@field status? starvideos.TaskStatus the last status recorded
---@field error? any a failed task's error, as the service said it
---@field key? string the job's key
---@field out? string the file its create asked for
---@field created_at? number Unix seconds of the create
---@field path? string the file downloaded
---@field bytes? integer its size
---@field sha256? string its SHA-256
---@field check? "ok"|"missing"|"changed" with check = true: the file against the record
---@field check_error? string why it is not ok
---@field model? starvideos.Model the model
---@field prompt? string the prompt's first characters
---@field tenant? string the tenant its create named
---@field cost? number its model's price at its create (nil: unknown)
---@field refs? string[] the s3:// URLs of its local references still in the bucket
---@field parent? string the task it was made from (again, remix, continue)
---@field relation? "again"|"remix"|"continue" how it was made from its parent
---@field duration? integer the seconds its create asked
---@field body? string its create's JSON body as sent (again's params)
---@field reason? starvideos.FailureReason a failed task's: why
---@field input? string a failed task's: the field its words named

---a create whose answer never came
---@class starvideos.PendingCreate
---@field ["local"] string the create's id in the journal
---@field model starvideos.Model its model
---@field prompt_hash string a hash of its prompt
---@field time number Unix seconds when it was sent

---the last rate limit the service's answers said (client:rate_limit)
---@class starvideos.RateLimit
---@field limit? number requests in the window
---@field remaining? number requests left in it
---@field reset? number seconds until it resets, as of at
---@field window? number the window, seconds
---@field family? "ratelimit"|"x-ratelimit" the headers read (absent: a 429's Retry-After alone)
---@field retry_after? number a 429's Retry-After, seconds
---@field at number Unix seconds of the answer

---a cap on money (spend_limit)
---@class starvideos.SpendLimit
---@field amount number the most the creates it covers may cost in a window, in prices' units
---@field per? number|"day"|"month" the window: seconds, a calendar day or month (nil: the ledger's life)
---@field scope? "key"|"tenant"|"model" what it covers (default key)
---@field model? starvideos.Model scope model: the model
---@field tenant? string scope tenant: one tenant (nil: every tenant its own)

---a spend limit in its window (client:spend)
---@class starvideos.Spend
---@field limit starvideos.SpendLimit the limit
---@field scope "key"|"tenant"|"model" what it covers
---@field model? starvideos.Model its model
---@field tenant? string its tenant
---@field spent number the price of the creates made in the window
---@field reserved number the price of the creates asked, not yet answered
---@field amount number the limit's amount
---@field resets_at? number Unix seconds of the window's end (nil: the ledger's life)
---@field window_start? number Unix seconds of the window's start

---a film made (client:film)
---@class starvideos.Film
---@field path string the film's file
---@field shots starvideos.Task[] each shot's task, in order
---@field copied boolean true: joined by a stream copy; false: re-encoded
---@field bytes? integer the film's size, when its out is an object (s3://): its provenance record's
---@field provenance_error? string why the film's provenance record was not written (the film is made)

---what client:film would make (dry_run)
---@class starvideos.FilmPlan
---@field shots starvideos.FilmShot[] each shot
---@field creates integer the creates it would send
---@field cost? number their price, when every price is known

---a shot of a film's plan
---@class starvideos.FilmShot
---@field index integer its place
---@field path string its file
---@field action "create"|"download"|"none" create; download: its task created before, followed; none: its file is made already
---@field model? starvideos.Model the model it takes (a continue's or a remix's: that of the shot it builds on, unless given)
---@field continues boolean it continues the shot before
---@field remixes? integer the shot whose video it takes as a reference video

---what client:check could not check
---@class starvideos.Note
---@field field string the reference, e.g. referenceVideos[2]
---@field message string why

---event status: the task's status changed (on_progress: every answer)
---@class starvideos.StatusEvent
---@field type "status" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field eta? starvideos.Eta the job's, as of this answer
---@field reason? starvideos.FailureReason once the task failed: why
---@field input? string once the task failed: the field its words named

---event created: the create was answered: the task exists (on_event only)
---@class starvideos.CreatedEvent
---@field type "created" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list

---event saved: the task's video is whole at its out (on_event only)
---@class starvideos.SavedEvent
---@field type "saved" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field path string the file (or object URL)
---@field sha256 string its SHA-256

---event failed: a job following a task to its end ended with an error (on_event only)
---@class starvideos.FailedEvent
---@field type "failed" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field error starvideos.Error why: its message, kind, reason
---@field message string the error's words
---@field reason? starvideos.FailureReason why, where known
---@field input? string the field the words named

---event taken: a keeper took the job's task while this process's lease had lapsed
---@class starvideos.TakenEvent
---@field type "taken" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field by string the keeper's id

---event late: the task runs longer than 99% of the learned tasks of its kind
---@class starvideos.LateEvent
---@field type "late" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field elapsed number seconds since its create
---@field p99 number seconds

---event progress: a download received more bytes
---@class starvideos.ProgressEvent
---@field type "progress" the event's type
---@field id string the task's id
---@field task starvideos.Task the task
---@field status starvideos.TaskStatus its status
---@field index? integer its position in wait_all's, generate_all's or resume's list
---@field bytes integer bytes so far
---@field total? integer the video's bytes (nil: unknown)
---@field path string the file

---event request: an exchange started
---@class starvideos.RequestEvent
---@field type "request" the event's type
---@field request integer its number in the process
---@field attempt integer the attempt
---@field method string the HTTP method
---@field path string the URL's path
---@field request_id? string the attempt's X-Request-Id (an API request's)
---@field server_request_id? string the server's own id of the attempt's answer (response, retry)

---event response: an exchange ended with a whole HTTP answer
---@class starvideos.ResponseEvent
---@field type "response" the event's type
---@field request integer its number in the process
---@field attempt integer the attempt
---@field method string the HTTP method
---@field path string the URL's path
---@field request_id? string the attempt's X-Request-Id (an API request's)
---@field server_request_id? string the server's own id of the attempt's answer (response, retry)
---@field status integer the HTTP status
---@field elapsed number seconds

---event retry: a request will be tried again
---@class starvideos.RetryEvent
---@field type "retry" the event's type
---@field request integer its number in the process
---@field attempt integer the attempt
---@field method string the HTTP method
---@field path string the URL's path
---@field request_id? string the attempt's X-Request-Id (an API request's)
---@field server_request_id? string the server's own id of the attempt's answer (response, retry)
---@field status? integer the HTTP status
---@field delay number seconds
---@field reason string why

---event warning: something said once
---@class starvideos.WarningEvent
---@field type "warning" the event's type
---@field message string what
---@field path? string the journal, for its unreadable lines
---@field field? string "spend_limit" for a spend limit crossing a step
---@field limit? starvideos.SpendLimit that limit, as given
---@field percent? integer the step crossed: 50, 80 or 100
---@field tenant? string the tenant of a limit of scope tenant

---event journal_error: a record could not be written to the journal
---@class starvideos.JournalErrorEvent
---@field type "journal_error" the event's type
---@field path string the journal
---@field message string what

---event store_reset: the store lost its data; the unsettled tasks were recorded again
---@class starvideos.StoreResetEvent
---@field type "store_reset" the event's type
---@field where string the store
---@field tasks integer tasks recorded again
---@field creates integer creates counted again
---@field message string what

---event claim: keep took a task whose owner let go
---@class starvideos.ClaimEvent
---@field type "claim" the event's type
---@field id string the task's id
---@field from string the owner it came from
---@field path string where it will be saved
---@field saved_to "out"|"dir" which of the two

---event preflight: a reference's check could not be made; the create goes on
---@class starvideos.PreflightEvent
---@field type "preflight" the event's type
---@field id? string nil
---@field field string the reference, e.g. referenceVideos[2]
---@field message string why

---event delivery: a webhook delivery ended
---@class starvideos.DeliveryEvent
---@field type "delivery" the event's type
---@field id string the task's id
---@field webhook_id string the delivery's id
---@field outcome "delivered"|"refused"|"owed" how it ended
---@field status? integer the receiver's HTTP status
---@field reason? string why

---event batch: generate_all's on_progress: after every change
---@class starvideos.BatchEvent
---@field type "batch" the event's type
---@field created integer entries with a task
---@field done integer entries completed
---@field failed integer entries that failed
---@field cancelled integer entries cancelled (Ctrl-C, close)
---@field refused integer of the failed, those a spend limit refused (nothing sent)
---@field total integer entries

---@alias starvideos.Event starvideos.StatusEvent|starvideos.CreatedEvent|starvideos.SavedEvent|starvideos.FailedEvent|starvideos.TakenEvent|starvideos.LateEvent|starvideos.ProgressEvent|starvideos.RequestEvent|starvideos.ResponseEvent|starvideos.RetryEvent|starvideos.WarningEvent|starvideos.JournalErrorEvent|starvideos.StoreResetEvent|starvideos.ClaimEvent|starvideos.PreflightEvent|starvideos.DeliveryEvent|starvideos.BatchEvent

---The module: require "starvideos"
---@class starvideos
---@field Client starvideos.Client the class of clients (starvideos.new is Client.new)
---@field DEFAULT_BASE_URL string the service's base URL, used when no base_url is given
---@field _VERSION string the library's version, "starvideos X.Y.Z"
---@field models table<starvideos.Model, starvideos.ModelInfo> the capability table of the models, read-only
local starvideos = {}

---client:create on the default client.
---@param params starvideos.Params
---@return starvideos.Task? task
---@return starvideos.Error? err
function starvideos.create(params) end

---The default client, made from the environment on first use.
---@return starvideos.Client client
function starvideos.default() end

---The file name (no folder, no .mp4) a task's video is given.
---@param id string
---@return string name
function starvideos.file_name(id) end

---Makes a client; raises on a bad option.
---@param opts? starvideos.Options
---@return starvideos.Client client
function starvideos.new(opts) end

---An error table of the library's shape; tostring gives kind: message.
---@param kind starvideos.ErrorKind
---@param message string
---@param fields? table
---@return starvideos.Error err
function starvideos.new_error(kind, message, fields) end

---The creates of a journal whose answer never came, read from the file alone.
---@param journal_path string
---@return starvideos.PendingCreate[]? list
---@return starvideos.Error? err
function starvideos.pending(journal_path) end

---client:query on the default client.
---@param id_or_task string|starvideos.Task
---@return starvideos.Task? task
---@return starvideos.Error? err
function starvideos.query(id_or_task) end

---Reads an Ed25519 private key in PEM now, for new's provenance = {sign_key = KEY}; raises when it is none.
---@param path string
---@return starvideos.SignKey key
function starvideos.sign_key(path) end

---Checks a request against its model's rules, with no key and no network.
---@param params starvideos.Params
---@return true? ok
---@return starvideos.Warning[]|starvideos.Error warnings_or_err
function starvideos.validate(params) end

---Checks a webhook signed as Standard Webhooks.
---@param secret string
---@param headers table<string, string|string[]>
---@param body string
---@param opts? starvideos.VerifyOpts
---@return true? ok
---@return starvideos.Error? err
function starvideos.verify_webhook(secret, headers, body, opts) end

---client:wait on the default client.
---@param id_or_task string|starvideos.Task
---@param opts? starvideos.WaitOpts
---@return starvideos.Task? task
---@return starvideos.Error? err
function starvideos.wait(id_or_task, opts) end

---A client (starvideos.new); tostring(client) names its base URL
---@class starvideos.Client
---@field on_event? fun(event: starvideos.Event) the client's event listener; nil removes it
local Client = {}

---generate again from a task of the ledger: its recorded params changed by overrides (opts.out required).
---@param task string|starvideos.Task
---@param overrides? starvideos.Params
---@param opts starvideos.LineageOpts
---@return starvideos.Task|starvideos.Job|nil task
---@return starvideos.Error? err
function Client:again(task, overrides, opts) end

---The counts of a batch submit returned, as the ledger holds them now.
---@param id string
---@return starvideos.BatchCounts? counts
---@return starvideos.Error? err
function Client:batch(id) end

---Validates params and checks their reference media, creating nothing.
---@param params starvideos.Params
---@return starvideos.Note[]? notes
---@return starvideos.Error? err
function Client:check(params) end

---Cancels this client's jobs and lets go of its key's loop.
function Client:close() end

---generate from a task's last frame as first_image; params.last_image required (opts.out too).
---@param task string|starvideos.Task
---@param params starvideos.Params
---@param opts starvideos.LineageOpts
---@return starvideos.Task|starvideos.Job|nil task
---@return starvideos.Error? err
function Client:continue(task, params, opts) end

---Creates a task; an invalid request sends nothing.
---@param params starvideos.Params
---@param opts? starvideos.CreateOpts
---@return starvideos.Task? task
---@return starvideos.Error? err
function Client:create(params, opts) end

---Downloads a video to path, through path .. ".part".
---@param target string|starvideos.Task
---@param path string
---@param opts? starvideos.DownloadOpts
---@return string? path
---@return starvideos.Error? err
---@return string? sha256
function Client:download(target, path, opts) end

---A film from a storyboard: each shot a keyed generate (or continue), then joined at opts.out by ffmpeg.
---@param shots starvideos.Params[]
---@param opts starvideos.FilmOpts
---@return starvideos.Film|starvideos.FilmPlan|starvideos.Job|nil film
---@return starvideos.Error? err
function Client:film(shots, opts) end

---create, wait and, with out, download in one call.
---@param params starvideos.Params
---@param opts? starvideos.GenerateOpts
---@return starvideos.Task? task
---@return starvideos.Error? err
function Client:generate(params, opts) end

---generate for every params table of list, at once.
---@param list starvideos.Params[]
---@param opts? starvideos.GenerateAllOpts
---@return starvideos.Result[] results
function Client:generate_all(list, opts) end

---Carries the ledger's tasks whose owner let go of its lease.
---@param opts? starvideos.KeepOpts
---@return (starvideos.Result[]|starvideos.Plan)? results
---@return starvideos.Error? err
function Client:keep(opts) end

---The metrics in Prometheus's text format.
---@return string text
function Client:metrics() end

---The creates of the ledger whose answer never came.
---@param opts? starvideos.PendingOpts
---@return starvideos.PendingCreate[]? list
---@return starvideos.Error? err
function Client:pending(opts) end

---What generate_all(list, opts) would do now, sending nothing.
---@param list starvideos.Params[]
---@param opts? starvideos.GenerateAllOpts
---@return starvideos.Plan plan
function Client:plan(list, opts) end

---The task as the service sees it now.
---@param id_or_task string|starvideos.Task
---@return starvideos.Task? task
---@return starvideos.Error? err
function Client:query(id_or_task) end

---The last rate limit the service's answers said for the key; nil before any did.
---@return starvideos.RateLimit? seen
function Client:rate_limit() end

---generate with a task's saved video as the reference video (opts.out required).
---@param task string|starvideos.Task
---@param params starvideos.Params
---@param opts starvideos.LineageOpts
---@return starvideos.Task|starvideos.Job|nil task
---@return starvideos.Error? err
function Client:remix(task, params, opts) end

---Carries every unfinished task of the ledger to a file.
---@param opts? starvideos.ResumeOpts
---@return (starvideos.Result[]|starvideos.Plan)? results
---@return starvideos.Error? err
function Client:resume(opts) end

---Each spend limit in its window now: spent, reserved, amount.
---@param opts? starvideos.SpendOpts
---@return starvideos.Spend[]? list
---@return starvideos.Error? err
function Client:spend(opts) end

---Server-Sent Events of the key's tasks: inside nginx the request answered, else a job step drives.
---@param opts? starvideos.SseOpts
---@return starvideos.Job|true job
function Client:sse(opts) end

---Starts a task as a non-blocking job, moved by client:step.
---@param params starvideos.Params
---@param opts? starvideos.JobOpts
---@return starvideos.Job? job
---@return starvideos.Error? err
function Client:start(params, opts) end

---Moves the key's jobs and requests, waiting up to seconds.
---@param seconds? number
---@return starvideos.Job[] finished
function Client:step(seconds) end

---Queues list in the store for every keep of the ledger to create, sending nothing.
---@param list starvideos.Params[]
---@param opts starvideos.SubmitOpts
---@return starvideos.Submitted? b
---@return starvideos.Error? err
function Client:submit(list, opts) end

---Every task and create of the ledger, oldest first.
---@param opts? starvideos.TasksOpts
---@return starvideos.TaskRecord[]? list
---@return starvideos.Error? err
function Client:tasks(opts) end

---Polls the task until it is completed.
---@param id_or_task string|starvideos.Task
---@param opts? starvideos.WaitOpts
---@return starvideos.Task? task
---@return starvideos.Error? err
function Client:wait(id_or_task, opts) end

---Waits for every task of list at once.
---@param list (string|starvideos.Task)[]
---@param opts? starvideos.WaitAllOpts
---@return starvideos.Result[] results
function Client:wait_all(list, opts) end

---Follows an existing task as a job.
---@param id_or_task string|starvideos.Task
---@param opts? starvideos.JobOpts
---@return starvideos.Job job
function Client:watch(id_or_task, opts) end

return starvideos
