-- An S3-compatible store for the storage hosts specs (rocks/s3/spec/hosts/s3_spec.lua, s3_nginx_spec.lua,
-- s3_faults_spec.lua, refs_s3_spec.lua): s3rver 3.7.1 behind the specs' own proxy that checks every request's SigV4
-- (presigned URLs too) with the AWS SDK's signer (spec/npm/s3_server.js), its objects read back by the AWS SDK's own S3
-- client (spec/npm/s3_read.js).
--   local why = S3run.missing()          -- what is not installed, or nil
--   local st = S3run.start{ refuse = true, bucket = "vids" } -- refuse: x-amz-checksum-* refused (R2, B2)
--   st.url, st.port, st.dir (s3rver's folder), st.log() (the proxy's log: a table per request), st.read(key),
--   st.video(key) (st.read's and the served video's size and SHA-256: the object up to the mark's box),
--   st.exists(key) (s3rver's file of the object), st.uploads_left(), st.stop(),
--   st.fault { complete_error = 1 } (the proxy's faults: name -> how many times more; s3_server.js names them),
--   st.faults_left() (what the proxy has not done yet)
local helper = require "spec.helper"
local cjson = require "cjson"

local M = {}

M.NPM = helper.root .. "/spec/npm"

-- Why the store cannot run here (node, or a package of spec/npm), or nil.
function M.missing()
  if not helper.execute("command -v node >/dev/null 2>&1") then return "node (Debian: nodejs) is not installed" end
  for _, m in ipairs { "s3rver", "@aws-sdk/client-s3", "@smithy/signature-v4" } do
    if not helper.exists(M.NPM .. "/node_modules/" .. m .. "/package.json") then
      return m .. " is not installed in spec/npm (make installs it with npm ci; npm is needed)"
    end
  end
end

function M.start(opts)
  opts = opts or {}
  local bucket = opts.bucket or "vids"
  local dir = helper.tmpdir()
  local st = { dir = dir .. "/data", log_file = dir .. "/log", bucket = bucket, faults_file = dir .. "/faults" }
  os.execute("mkdir -p " .. helper.shell_quote(st.dir))
  st.proc = helper.spawn("node " .. helper.shell_quote(M.NPM .. "/s3_server.js") .. " --dir "
    .. helper.shell_quote(st.dir) .. " --log " .. helper.shell_quote(st.log_file) .. " --bucket " .. bucket
    .. " --faults " .. helper.shell_quote(st.faults_file) .. (opts.refuse and " --refuse-checksums" or ""))
  local line = st.proc.pipe:read("*l")
  st.port = assert(tonumber((line or ""):match('"port":(%d+)')), "the store did not start: " .. tostring(line))
  st.url = "http://127.0.0.1:" .. st.port
  function st.stop() os.execute("kill " .. st.proc.pid .. " 2>/dev/null"); st.proc:close() end
  function st.log()
    local out = {}
    for l in (helper.read_file(st.log_file) or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(l) end
    return out
  end
  function st.read(key) -- the object as the AWS SDK's client reads it
    local out = helper.capture("cd " .. helper.shell_quote(M.NPM) .. " && node s3_read.js " .. st.url .. " " .. bucket
      .. " " .. helper.shell_quote(key))
    return cjson.decode(out)
  end
  -- A saved video's object at key (st.read's), the served video in it beside: served, its size up to the mark's box
  -- its last part ends with (helper.video_size of s3rver's file, which must be the SDK's object, and must end with
  -- the box), and served_sha256, the SHA-256 of those bytes (the service's video's).
  function st.video(key)
    local back, file = st.read(key), st.dir .. "/" .. bucket .. "/" .. key .. "._S3rver_object"
    assert(helper.file_size(file) == back.bytes, "s3rver's file of " .. key .. " is not the object the SDK reads")
    back.served = helper.video_size(file)
    assert(back.served < back.bytes, "the object " .. key .. " does not end with the mark's box")
    back.served_sha256 = helper.capture("head -c " .. back.served .. " " .. helper.shell_quote(file) .. " | sha256sum")
      :match("^(%x+)")
    return back
  end
  function st.fault(t) helper.write_file(st.faults_file, cjson.encode(t)) end
  function st.faults_left() return cjson.decode(helper.read_file(st.faults_file) or "{}") end
  function st.exists(key) return helper.exists(st.dir .. "/" .. bucket .. "/" .. key .. "._S3rver_object") end
  function st.uploads_left() -- s3rver's own folder of the uploads in progress
    local up = st.dir .. "/" .. bucket .. "/._S3rver_uploads"
    return helper.exists(up) and #helper.listing(up) or 0
  end
  return st
end

-- The store and an emulator (spec/support/shared_emulator.lua's: opts its) for a describe block: keep(st, emu)
-- once both run (st nil when missing() says why); both stopped after the block's last test.
function M.shared(opts, keep)
  local busted, st = require "busted", nil
  require "spec.support.shared_emulator"(opts, function(emu)
    if not M.missing() then st = M.start {} end
    keep(st, emu)
  end)
  busted.lazy_teardown(function() if st then st.stop() end end)
end

-- For a describe block of the lineage specs (unless why: what is missing here), before its first test: an emulator
-- (helper.emulator's, opts its) that fetches each reference as the service does (fetch_refs), the store, a client of
-- both (its journal in a folder of its own, local files put under s3://vids/refs/) and a parent video made at
-- out_of(dir); keep(env): { emu =, st =, dir =, client =, parent = }.  All stopped after the block's last test.
function M.lineage(why, opts, out_of, keep)
  local busted, env = require "busted", nil
  busted.setup(function()
    if why then return end
    env = { emu = helper.emulator(opts), st = M.start {}, dir = helper.tmpdir() }
    env.emu:config { fetch_refs = true }
    env.client = require("starvideos").new { base_url = env.emu.url, api_key = env.emu.key, journal = env.dir
      .. "/j.jsonl", interval = 0.1, min_interval = 0.1, storage = { endpoint = env.st.url, access_key = "S3RVER",
        secret_key = "S3RVER", refs = "s3://vids/refs/" } }
    env.parent = assert(env.client:generate({ model = "videos", prompt = "a red fox", duration = 5, ratio = "16:9" },
      { out = out_of(env.dir) }))
    keep(env)
  end)
  busted.teardown(function()
    if not env then return end
    env.client:close()
    env.st.stop()
    env.emu:stop()
    helper.cleanup()
  end)
end

-- The parts PUT (answered 200) to the store, from its log.
function M.parts(log)
  local n = 0
  for _, e in ipairs(log) do n = n + (e.method == "PUT" and e.part and e.status == 200 and 1 or 0) end
  return n
end

return M
