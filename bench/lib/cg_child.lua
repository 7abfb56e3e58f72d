-- The child process of bench/callgrind.lua, run under valgrind --tool=callgrind:
-- N calls of one operation, so that two values of N give the cost of a call
-- with the start of the process cancelled out.
--   cg_child.lua validate N   starvideos.validate(params)
--   cg_child.lua build N      a create's build as the client does it:
--                             options.extra_json(params) + core.build_create(params, extra)
--   cg_child.lua answer N     reading one query answer as the client does it:
--                             core.verdict("query", 200, body, ...), which gives the task table
--   cg_child.lua query N URL  client:query(id) against the runner's nginx at URL
--   cg_child.lua floor N URL  the same exchange on the client's transport alone
--                             (its result is the task table): what is left without the client
local mode, n = arg[1], tonumber(arg[2])
local starvideos = require "starvideos"
local core = require "starvideos.core"
local options = require "starvideos.config"

local params = { model = "videos", prompt = "A kitten playing on a sunny meadow, golden hour, slow dolly shot",
  duration = 5, ratio = "16:9", resolution = "720p",
  referenceImages = { "https://img.example.com/ref/kitten-1.png", "https://img.example.com/ref/meadow-2.png" } }
local body = '{"id":"task_01JD6Z8ZQ3W4Y5X6V7B8N9M0KP","object":"video","created":1732252800,' ..
  '"model":"videos","status":"completed","video_url":"http://127.0.0.1:8080/video.bin?expires=1732339200' ..
  '&signature=9f2c4e1a7b3d5f60","actualDuration":5,"error":null}'

local op, client -- the client stays referenced: collected, it would close its transport
if mode == "validate" then
  local validate = starvideos.validate
  op = function() assert(validate(params)) end
elseif mode == "build" then
  local extra_json, build_create = options.extra_json, core.build_create
  op = function() assert(build_create(params, extra_json(params))) end
elseif mode == "answer" then
  local verdict = core.verdict
  op = function()
    local task, err = verdict("query", 200, body, nil, "none", "", 0, -1)
    assert(task, err)
    assert(task.status == "completed")
  end
elseif mode == "query" or mode == "floor" then
  -- a whole query against the runner's nginx (URL in arg[3]): client:query(id),
  -- or the floor under it: the client's own transport, no client logic (send,
  -- poll until finished, result: the task table)
  local base = assert(arg[3], "cg_child.lua query|floor N BASE_URL")
  client = starvideos.new { api_key = "sk-bench", base_url = base, requests_per_second = 1e6 }
  if mode == "query" then
    op = function() assert(assert(client:query("task_0001")).status == "completed") end
  else
    local tr = client.loop.transport
    -- what a query's request gives the transport (transport.lua's r)
    local r = { op = "query", url = base .. "/v1/result/task_0001", auth = true, max_body = client.cfg.max_answer,
      timeout = client.cfg.timeout }
    op = function()
      local h = assert(tr:send(r))
      local x
      repeat tr:poll(1); x = tr:finished() until x
      assert(x == h)
      local task = assert(tr:result(h))
      assert(task.status == "completed")
    end
  end
else
  error("usage: cg_child.lua validate|build|answer|query|floor N [BASE_URL]")
end
assert(n and n >= 0, "N")
op() -- the first call's one-time work (caches, interning) is startup, not per call
for _ = 1, n do op() end
io.write("DONE ", mode, " ", n, "\n")
