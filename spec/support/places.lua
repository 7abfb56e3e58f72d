-- The places of the matrix (spec/support/matrix.lua) where a count, a limit and the ledger live, as fixtures a spec
-- takes: places.ledger(name, dir) -> a place
--   place.name         "process", "journal" or "redis" (nginx's dict is a host's: spec/support/nginx_run.lua)
--   place.options()    what starvideos.new takes to hold its ledger there (a fresh table each call)
--   place.option       the option's name and place.where its value, as a child process is given them (or nil)
--   place.restart()    the place restarted as a user's would be: the process alone forgets (a client made anew is
--                      all there is); a journal is a file a process run again reads; Redis is stopped and started
--                      on its port and folder (kept what its persistence kept: places.ledger("redis", dir, {aof =
--                      true}) as docs/keep-and-fleet.md asks)
--   place.stop()       the servers it started stopped
-- places.missing(name): why the place cannot be had on this machine, or nil.
-- places.run(name, emu_opts, body): body given the place, an emulator and a folder, all stopped after.
-- places.fixture(name): the server of another rock's place (rocks/<rock>/spec/support/<name>_run.lua).
local helper = require "spec.helper"

local M = {}

M.LEDGERS = { "process", "journal", "redis" }

-- The fixture a rock's specs offer the core's for a place of theirs (a server: "redis" the store's, "s3" the
-- bucket's, "otlp" a collector of traces), found by convention, as the library finds its extensions: the first
-- rocks/<rock>/spec/support/<name>_run.lua of the rocks of rocks/folders.lua.  The core's specs name no rock.
function M.fixture(name)
  for _, d in ipairs(dofile(helper.root .. "/rocks/folders.lua")) do
    local rock = d:match("^rocks/([%w_-]+)/lua$")
    if rock and helper.exists(helper.root .. "/" .. d:gsub("lua$", "spec/support/" .. name .. "_run.lua")) then
      return require(table.concat({ "rocks", rock, "spec", "support", name .. "_run" }, "."))
    end
  end
  error("places.fixture: no rock of this checkout has spec/support/" .. name .. "_run.lua", 2)
end

function M.missing(name)
  if name == "redis" then return M.fixture("redis").missing() end
  return nil
end

local make = {}

function make.process()
  return { options = function() return {} end, restart = function() end, stop = function() end }
end

function make.journal(dir)
  local path = dir .. "/tasks.jsonl"
  return { option = "journal", where = path, options = function() return { journal = path } end,
    restart = function() end, stop = function() end }
end

function make.redis(_, opts)
  local redis_run = M.fixture("redis")
  local srv = redis_run.start { aof = opts.aof }
  local place = { option = "store", where = srv.url }
  function place.options() return { store = srv.url } end
  function place.restart()
    srv.stop()
    srv = redis_run.start { aof = opts.aof, port = srv.port, dir = srv.dir }
  end
  function place.stop() srv.stop() end
  return place
end

-- The ledger place name, in a folder of the case's (dir); opts: { aof = true } (Redis' append-only file).
function M.ledger(name, dir, opts)
  local place = assert(make[name], "places: no ledger place " .. tostring(name))(dir or helper.tmpdir(), opts or {})
  place.name = name
  return place
end

-- body(place, emu, dir) run with the ledger place name in a folder of its own (dir) and an emulator
-- (helper.emulator's emu_opts), both stopped after, whatever body did (its error raised again).
function M.run(name, emu_opts, body)
  local dir = helper.tmpdir()
  local place = M.ledger(name, dir)
  local emu = helper.emulator(emu_opts)
  local ok, err = pcall(body, place, emu, dir)
  emu:stop()
  place.stop()
  helper.cleanup()
  if not ok then error(err, 0) end
end

return M
