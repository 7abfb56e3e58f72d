-- The hand-kept part of types/starvideos.lua (tools/types.lua), continued: the
-- signatures of the module's functions and a client's methods, the module's
-- other fields, a request's fields and a model's (the names from the core), and
-- the shapes of tasks, jobs, errors, events and what the calls return
-- (docs/reference.md).  The format is tools/types/api.lua's.

local S = {}

local TASK_ERR = { { "starvideos.Task?", "task" }, { "starvideos.Error?", "err" } }
-- (opts.job: the job)
local TASK_JOB = { { "starvideos.Task|starvideos.Job|nil", "task" }, { "starvideos.Error?", "err" } }
local RESULTS = { { "starvideos.Result[]", "results" } }
-- (with dry_run: a plan)
local LISTED = { { "(starvideos.Result[]|starvideos.Plan)?", "results" }, { "starvideos.Error?", "err" } }

-- The module's fields (the loaded table's keys): a function's signature, or { type, line }.
S.MODULE = {
  new = { "Makes a client; raises on a bad option.", params = { { "opts?", "starvideos.Options" } },
    returns = { { "starvideos.Client", "client" } } },
  validate = { "Checks a request against its model's rules, with no key and no network.",
    params = { { "params", "starvideos.Params" } }, returns = { { "true?", "ok" },
    { "starvideos.Warning[]|starvideos.Error", "warnings_or_err" } } },
  pending = { "The creates of a journal whose answer never came, read from the file alone.",
    params = { { "journal_path", "string" } },
    returns = { { "starvideos.PendingCreate[]?", "list" }, { "starvideos.Error?", "err" } } },
  file_name = { "The file name (no folder, no .mp4) a task's video is given.", params = { { "id", "string" } },
    returns = { { "string", "name" } } },
  verify_webhook = { "Checks a webhook signed as Standard Webhooks.",
    params = { { "secret", "string" }, { "headers", "table<string, string|string[]>" }, { "body", "string" },
      { "opts?", "starvideos.VerifyOpts" } },
    returns = { { "true?", "ok" }, { "starvideos.Error?", "err" } } },
  sign_key = { "Reads an Ed25519 private key in PEM now, for new's provenance = {sign_key = KEY}; raises when it is "
    .. "none.", params = { { "path", "string" } }, returns = { { "starvideos.SignKey", "key" } } },
  default = { "The default client, made from the environment on first use.",
    returns = { { "starvideos.Client", "client" } } },
  create = { "client:create on the default client.", params = { { "params", "starvideos.Params" } },
    returns = TASK_ERR },
  query = { "client:query on the default client.", params = { { "id_or_task", "string|starvideos.Task" } },
    returns = TASK_ERR },
  wait = { "client:wait on the default client.",
    params = { { "id_or_task", "string|starvideos.Task" }, { "opts?", "@wait" } }, returns = TASK_ERR },
  new_error = { "An error table of the library's shape; tostring gives kind: message.",
    params = { { "kind", "starvideos.ErrorKind" }, { "message", "string" }, { "fields?", "table" } },
    returns = { { "starvideos.Error", "err" } } },
  _VERSION = { "string", 'the library\'s version, "starvideos X.Y.Z"' },
  DEFAULT_BASE_URL = { "string", "the service's base URL, used when no base_url is given" },
  Client = { "starvideos.Client", "the class of clients (starvideos.new is Client.new)" },
  models = { "table<starvideos.Model, starvideos.ModelInfo>", "the capability table of the models, read-only" },
}

-- A client's methods (its metatable's functions).
S.METHODS = {
  create = { "Creates a task; an invalid request sends nothing.",
    params = { { "params", "starvideos.Params" }, { "opts?", "@create" } }, returns = TASK_ERR },
  check = { "Validates params and checks their reference media, creating nothing.",
    params = { { "params", "starvideos.Params" } },
    returns = { { "starvideos.Note[]?", "notes" }, { "starvideos.Error?", "err" } } },
  query = { "The task as the service sees it now.", params = { { "id_or_task", "string|starvideos.Task" } },
    returns = TASK_ERR },
  wait = { "Polls the task until it is completed.",
    params = { { "id_or_task", "string|starvideos.Task" }, { "opts?", "@wait" } }, returns = TASK_ERR },
  download = { "Downloads a video to path, through path .. \".part\".",
    params = { { "target", "string|starvideos.Task" }, { "path", "string" }, { "opts?", "@download" } },
    returns = { { "string?", "path" }, { "starvideos.Error?", "err" }, { "string?", "sha256" } } },
  generate = { "create, wait and, with out, download in one call.",
    params = { { "params", "starvideos.Params" }, { "opts?", "@generate" } }, returns = TASK_ERR },
  again = { "generate again from a task of the ledger: its recorded params changed by overrides (opts.out required).",
    params = { { "task", "string|starvideos.Task" }, { "overrides?", "starvideos.Params" }, { "opts", "@lineage" } },
    returns = TASK_JOB },
  remix = { "generate with a task's saved video as the reference video (opts.out required).",
    params = { { "task", "string|starvideos.Task" }, { "params", "starvideos.Params" }, { "opts", "@lineage" } },
    returns = TASK_JOB },
  continue = { "generate from a task's last frame as first_image; params.last_image required (opts.out too).",
    params = { { "task", "string|starvideos.Task" }, { "params", "starvideos.Params" }, { "opts", "@lineage" } },
    returns = TASK_JOB },
  film = { "A film from a storyboard: each shot a keyed generate (or continue), then joined at opts.out by ffmpeg.",
    params = { { "shots", "starvideos.Params[]" }, { "opts", "@film" } },
    returns = { { "starvideos.Film|starvideos.FilmPlan|starvideos.Job|nil", "film" },
      { "starvideos.Error?", "err" } } },
  generate_all = { "generate for every params table of list, at once.",
    params = { { "list", "starvideos.Params[]" }, { "opts?", "@generate_all" } }, returns = RESULTS },
  submit = { "Queues list in the store for every keep of the ledger to create, sending nothing.",
    params = { { "list", "starvideos.Params[]" }, { "opts", "@submit" } },
    returns = { { "starvideos.Submitted?", "b" }, { "starvideos.Error?", "err" } } },
  batch = { "The counts of a batch submit returned, as the ledger holds them now.", params = { { "id", "string" } },
    returns = { { "starvideos.BatchCounts?", "counts" }, { "starvideos.Error?", "err" } } },
  plan = { "What generate_all(list, opts) would do now, sending nothing.",
    params = { { "list", "starvideos.Params[]" }, { "opts?", "@generate_all" } },
    returns = { { "starvideos.Plan", "plan" } } },
  wait_all = { "Waits for every task of list at once.",
    params = { { "list", "(string|starvideos.Task)[]" }, { "opts?", "@wait_all" } }, returns = RESULTS },
  resume = { "Carries every unfinished task of the ledger to a file.", params = { { "opts?", "@resume" } },
    returns = LISTED },
  keep = { "Carries the ledger's tasks whose owner let go of its lease.", params = { { "opts?", "@keep" } },
    returns = LISTED },
  pending = { "The creates of the ledger whose answer never came.", params = { { "opts?", "@pending" } },
    returns = { { "starvideos.PendingCreate[]?", "list" }, { "starvideos.Error?", "err" } } },
  tasks = { "Every task and create of the ledger, oldest first.", params = { { "opts?", "@tasks" } },
    returns = { { "starvideos.TaskRecord[]?", "list" }, { "starvideos.Error?", "err" } } },
  start = { "Starts a task as a non-blocking job, moved by client:step.",
    params = { { "params", "starvideos.Params" }, { "opts?", "@job" } },
    returns = { { "starvideos.Job?", "job" }, { "starvideos.Error?", "err" } } },
  watch = { "Follows an existing task as a job.",
    params = { { "id_or_task", "string|starvideos.Task" }, { "opts?", "@job" } },
    returns = { { "starvideos.Job", "job" } } },
  step = { "Moves the key's jobs and requests, waiting up to seconds.", params = { { "seconds?", "number" } },
    returns = { { "starvideos.Job[]", "finished" } } },
  metrics = { "The metrics in Prometheus's text format.", returns = { { "string", "text" } } },
  spend = { "Each spend limit in its window now: spent, reserved, amount.", params = { { "opts?", "@spend" } },
    returns = { { "starvideos.Spend[]?", "list" }, { "starvideos.Error?", "err" } } },
  sse = { "Server-Sent Events of the key's tasks: inside nginx the request answered, else a job step drives.",
    params = { { "opts?", "@sse" } }, returns = { { "starvideos.Job|true", "job" } } },
  rate_limit = { "The last rate limit the service's answers said for the key; nil before any did.",
    returns = { { "starvideos.RateLimit?", "seen" } } },
  close = { "Cancels this client's jobs and lets go of its key's loop." },
}

-- A request's fields (the core's list of every field a model takes).
local REF = "string|starvideos.LocalFile"
S.PARAMS = {
  model = { "starvideos.Model", "the model" }, prompt = { "string", "the prompt" },
  duration = { "integer", "seconds of video" }, ratio = { "starvideos.Ratio", "the aspect ratio" },
  resolution = { "starvideos.Resolution", "the resolution" },
  first_image = { REF, "the first frame" }, last_image = { REF, "the last frame" },
  image = { REF, "first_image's older name" }, lastFrameImage = { REF, "last_image's older name" },
  referenceImages = { "(" .. REF .. ")[]", "reference images" },
  referenceVideos = { "(" .. REF .. ")[]", "reference videos" },
  referenceAudios = { "(" .. REF .. ")[]", "reference audios" },
  extra = { "table<string, any>", "sent as it is, for API additions" },
}

-- A model's capabilities (the fields of the core's models).
S.MODEL = {
  name = { "starvideos.Model", "the model's name" }, endpoint = { "string", "its create endpoint's path" },
  duration = { "starvideos.DurationRule", "its durations" }, ratios = { "starvideos.Ratio[]", "its ratios" },
  default_ratio = { "starvideos.Ratio", "the ratio without one asked" },
  resolutions = { "starvideos.Resolution[]", "its resolutions (empty: none is taken)" },
  prompt_max = { "integer", "characters of a prompt at most (nil: no limit)", true },
  max_images = { "integer", "reference images at most" },
  max_images_with_video = { "integer", "reference images at most beside a video" },
  max_videos = { "integer", "reference videos at most" }, max_audios = { "integer", "reference audios at most" },
  legacy_aliases = { "boolean", "whether image and lastFrameImage are taken" },
  ignored = { "starvideos.IgnoredRule[]", "what the service ignores of a request (a warning each)" },
}

return S
