-- Local files as references (docs/storage.md, storage/refs.lua) against a real S3-compatible server: s3rver 3.7.1
-- behind the specs' proxy that checks every request's SigV4 with the AWS SDK's signer, presigned GETs with its
-- presign (rocks/s3/spec/support/s3_run.lua), and the emulator fetching each reference URL as the service does (its
-- fetch_refs).  One upload for one file's bytes, whoever names it; the object gone once the last live task naming
-- it ended (this process's jobs counted, another process's tasks read in the shared journal); keep_refs; a refused
-- file sends nothing; what a killed process left, deleted by resume; the same inside nginx (its cosockets).  A video's
-- provenance record names a local reference by its SHA-256 and size, never by its presigned URL.
local helper = require "spec.helper"
local cjson = require "cjson"
local core = require "starvideos.core"
local media = require "starvideos.emulator.media"
local S3run = require "rocks.s3.spec.support.s3_run"
local nginx_run = require "spec.support.nginx_run"

-- A child process: a generate (or generate_all of its prompts, each naming the files) with a journal, then its
-- results as JSON.  args: base, key, store port, journal, out (pattern), files (comma-separated), mode, prompts
local GEN = [[
local starvideos = require "starvideos"
local base, key, port, journal, out, files, mode, prompts = (unpack or table.unpack)(arg, 1, 8)
local c = starvideos.new { base_url = base, api_key = key, journal = journal,
  storage = { endpoint = "http://127.0.0.1:" .. port, access_key = "S3RVER", secret_key = "S3RVER",
    refs = "s3://vids/refs/", keep_refs = mode == "keep_refs" or nil } }
local refs = {}
for f in files:gmatch("[^,]+") do refs[#refs + 1] = { file = f } end
local list = {}
if mode == "resume" then
  list = assert(c:resume { interval = 0.1, dir = out })
else
  local entries = {}
  for p in prompts:gmatch("[^,]+") do
    entries[#entries + 1] = { model = "videos", prompt = p, duration = 5, referenceImages = refs }
  end
  list = c:generate_all(entries, { out = out, interval = 0.1 })
end
local out_list = {}
for i, r in ipairs(list) do
  out_list[i] = { path = r.path, err = r.err and tostring(r.err), field = r.err and r.err.field,
    creates = r.err and r.err.maybe_created }
end
io.stdout:write(require("cjson").encode(out_list), "\n")
]]

local function result_of(p)
  local text = p.pipe:read("*a")
  p:close()
  local ok, list = pcall(cjson.decode, text:match("([^\n]*)\n?$")) -- (its last line; cjson's {} is an empty list)
  return ok and type(list) == "table" and list or error(text), text
end

-- The store's log, counted: requests of method on the refs/ keys (ok: those answered 2xx).
local function count(st, method, presigned)
  local n = 0
  for _, e in ipairs(st.log()) do
    if e.method == method and e.path:find("^/vids/refs/") and (presigned == nil or (e.presigned or false) == presigned)
    then n = n + 1 end
  end
  return n
end

-- The journal's last refs record of each task (false: none left).
local function refs_records(journal)
  local by = {}
  for l in (helper.read_file(journal) or ""):gmatch("[^\n]+") do
    local e = cjson.decode(l)
    if e.event == "refs" then by[e.id] = e.refs end
  end
  return by
end

describe("local files as references, put into a bucket (s3rver behind a SigV4-checking proxy)", function()
  local why = S3run.missing()
  local emu, st, dir, png, key
  setup(function()
    if why then return end
    emu = helper.emulator { queued = 0, processing = 0.3 }
    emu:config { fetch_refs = true }
    st = S3run.start {}
    dir = helper.tmpdir()
    png = media.png { width = 320, height = 240 }
    helper.write_file(dir .. "/cat.png", png)
    key = "refs/" .. require("starvideos.sign").sha256(png) .. ".png"
  end)
  teardown(function()
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)
  before_each(function() if emu then emu:reset(); emu:config { fetch_refs = true } end end)

  local function gen(args)
    local a = { emu.url, emu.key, tostring(st.port), args.journal, args.out, table.concat(args.files, ","),
      args.mode or "generate", table.concat(args.prompts or { "a cat" }, ",") }
    return helper.run_lua(dir, "gen", GEN, a)
  end

  it("three creates in two processes naming one file: one PUT (the second process's HEAD finds it), every "
    .. "presigned URL fetched by the service whole with a signature the SDK accepts, the object deleted once the "
    .. "last task naming it ended, by the process that ran it", function()
    if why then pending(why) return end
    local journal = dir .. "/shared.jsonl"
    emu:config { processing = 3 }
    local a = gen { journal = journal, out = dir .. "/a%d.mp4", files = { dir .. "/cat.png", dir .. "/./cat.png" },
      prompts = { "one", "two" } }
    assert.is_true(helper.wait_until(function() return next(refs_records(journal)) ~= nil end, 60))
    emu:config { processing = 5 } -- (the second process's task ends after the first's two)
    local b = gen { journal = journal, out = dir .. "/b%d.mp4", files = { dir .. "/cat.png" } }
    local ra, ta = result_of(a)
    assert.truthy(st.exists(key), "the first process deleted the object while another task named it")
    local rb, tb = result_of(b)
    assert.are.same({ dir .. "/a1.mp4", dir .. "/a2.mp4" }, { ra[1].path, ra[2].path }, ta)
    assert.are.equal(dir .. "/b1.mp4", rb[1].path, tb)
    assert.are.same({ 1, 2, 0, 1 }, { count(st, "PUT"), count(st, "HEAD"), count(st, "GET", false),
      count(st, "DELETE") })
    assert.are.equal(2 + 2 + 1, count(st, "GET", true)) -- (the first process's creates name the file twice)
    for _, e in ipairs(st.log()) do assert.are.equal("ok", e.signature, cjson.encode(e)) end
    local tasks = emu:tasks()
    assert.are.equal(3, #tasks)
    for _, t in ipairs(tasks) do
      assert.are.equal("completed", t.status)
      assert.are.equal(#t.params.referenceImages, #t.fetched)
      for i, f in ipairs(t.fetched) do
        assert.are.same({ 200, #png, core.hash(png) }, { f.status, f.bytes, f.hash })
        assert.matches("X-Amz-Signature=", t.params.referenceImages[i], 1, true)
      end
    end
    local last = st.log()[#st.log()]
    assert.are.same({ "DELETE", "/vids/" .. key, 204 }, { last.method, last.path, last.status })
    assert.is_true(st.read(key).missing)
    for id, refs in pairs(refs_records(journal)) do assert.are.equal(false, refs, id) end
    -- each video's provenance record names the file by its SHA-256 and size, not by the presigned URL the service
    -- was given, and holds neither the key nor the bucket's (docs/lineage.md, "Where each video came from")
    for _, out in ipairs { dir .. "/a1.mp4", dir .. "/b1.mp4" } do
      local text = assert(helper.read_file(out .. ".json"))
      assert.are.same({ file = "cat.png", sha256 = require("starvideos.sign").sha256(png), bytes = #png },
        cjson.decode(text).params.referenceImages[1])
      for _, secret in ipairs { emu.key, "S3RVER", "X-Amz-", "/refs/" } do
        assert.is_nil(text:find(secret, 1, true), out .. ".json holds " .. secret)
      end
    end
  end)

  it("a policy refusal of a create naming a local file is kept by the file's bytes: the same file by a relative or "
    .. "absolute path, a copy, a hard link or a symlink is refused before anything is sent: 1 create, then 0",
    function()
      if why then pending(why) return end
      emu:config { queued = 0, processing = 0, failures = { { kind = "policy", prompt = "forbidden" } } }
      local c = require("starvideos").new { base_url = emu.url, api_key = emu.key, journal = dir .. "/policy.jsonl",
        storage = { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER", refs = "s3://vids/refs/" } }
      local q = helper.shell_quote
      local file = dir .. "/cat.png"
      assert(helper.execute("cp " .. q(file) .. " " .. q(dir .. "/copy.png") .. " && ln -f " .. q(file) .. " "
        .. q(dir .. "/hard.png") .. " && ln -sf " .. q(file) .. " " .. q(dir .. "/soft.png")))
      local depth = select(2, helper.capture("pwd -P"):gsub("/[^/\n]+", ""))
      local relative = "./" .. string.rep("../", depth) .. file:gsub("^/", "") -- (from this process's folder)
      local function create(f)
        return c:generate({ model = "videos", prompt = "a forbidden cat", duration = 5,
          referenceImages = { { file = f } } }, { interval = 0.05, timeout = 30 })
      end
      local _, err = create(file)
      assert.same({ "task_failed", "policy" }, { err.kind, err.reason })
      assert.are.equal(1, emu:creates())
      for _, f in ipairs { relative, file, dir .. "/copy.png", dir .. "/hard.png", dir .. "/soft.png" } do
        local _, again = create(f)
        assert.same({ "refused_before", err.task.id }, { again.kind, again.task and again.task.id }, f)
      end
      assert.are.equal(1, emu:creates(), "each spelling of the same bytes refused before anything was sent")
      c:close()
    end)

  it("a file that is not there, or cannot be read: refused naming its field, nothing created, nothing sent to the "
    .. "store", function()
    if why then pending(why) return end
    local before = #st.log()
    for _, f in ipairs { dir .. "/missing.png", "/proc/self/mem" } do
      local r = result_of(gen { journal = dir .. "/refused.jsonl", out = dir .. "/r%d.mp4", files = { f } })
      assert.are.equal("referenceImages[1]", r[1].field, r[1].err)
      assert.matches("cannot be read", r[1].err, 1, true)
    end
    assert.are.equal(0, emu:creates())
    assert.are.equal(before, #st.log())
  end)

  it("keep_refs: the object stays after its task ended, no delete sent, no record of it in the journal", function()
    if why then pending(why) return end
    local other = dir .. "/dog.png"
    helper.write_file(other, media.png { width = 300, height = 300 })
    local okey = "refs/" .. require("starvideos.sign").sha256(helper.read_file(other)) .. ".png"
    local journal = dir .. "/keep.jsonl"
    local r, text = result_of(gen { journal = journal, out = dir .. "/k%d.mp4", files = { other }, mode = "keep_refs" })
    assert.are.equal(dir .. "/k1.mp4", r[1].path, text)
    assert.are.equal(#helper.read_file(other), st.read(okey).bytes)
    for _, e in ipairs(st.log()) do assert.is_false(e.method == "DELETE" and e.path == "/vids/" .. okey) end
    assert.are.same({}, refs_records(journal))
  end)

  it("a process killed with its task running leaves its object recorded: resume carries the task and deletes the "
    .. "object at its end; one left by an ended task is deleted by resume's sweep", function()
    if why then pending(why) return end
    local journal = dir .. "/killed.jsonl"
    emu:config { processing = 2 }
    local p = gen { journal = journal, out = dir .. "/x%d.mp4", files = { dir .. "/cat.png" } }
    assert.is_true(helper.wait_until(function() return next(refs_records(journal)) ~= nil end, 60))
    os.execute("kill -9 " .. p.pid)
    p:close()
    assert.truthy(st.exists(key))
    local r, text = result_of(gen { journal = journal, out = dir, files = {}, mode = "resume" })
    assert.truthy(r[1] and r[1].path, text)
    assert.is_true(st.read(key).missing)
    for id, refs in pairs(refs_records(journal)) do assert.are.equal(false, refs, id) end
    -- an ended task whose refs record stayed (its process killed between its end and the delete): swept
    r, text = result_of(gen { journal = journal, out = dir .. "/y%d.mp4", files = { dir .. "/cat.png" },
      mode = "keep_refs" })
    assert.truthy(r[1].path, text)
    assert.truthy(st.exists(key))
    local id = emu:tasks()[#emu:tasks()].id
    local f = assert(io.open(journal, "a"))
    f:write(cjson.encode { event = "refs", id = id, refs = cjson.encode { "s3://vids/" .. key } }, "\n")
    f:close()
    r, text = result_of(gen { journal = journal, out = dir, files = {}, mode = "resume" })
    assert.are.same({}, r, text)
    assert.is_true(st.read(key).missing)
    assert.are.equal(false, refs_records(journal)[id])
  end)

  it("inside nginx (its sockets, a generate in a request handler): put, fetched by the service through its "
    .. "presigned URL, deleted at the task's end", function()
    if why then pending(why) return end
    local nwhy = nginx_run.missing { "nginx" }
    if nwhy then pending(nwhy) return end
    local bird = dir .. "/bird.png"
    local bytes = media.png { width = 200, height = 150 }
    helper.write_file(bird, bytes)
    local bkey = "refs/" .. require("starvideos.sign").sha256(bytes) .. ".png"
    local ndir = helper.tmpdir()
    local ngx = nginx_run.start(ndir)
    local body = cjson.encode { op = "generate", path = ndir .. "/bird.mp4",
      client = { base_url = emu.url, api_key = emu.key, storage = { endpoint = st.url, access_key = "S3RVER",
        secret_key = "S3RVER", refs = "s3://vids/refs/" } },
      params = { model = "videos", prompt = "a bird", duration = 5, referenceImages = { { file = bird } } } }
    local out = {}
    local http, ltn12 = require "socket.http", require "ltn12"
    local _, code = http.request { url = "http://127.0.0.1:" .. ngx.port .. "/probe", method = "POST",
      source = ltn12.source.string(body), sink = ltn12.sink.table(out),
      headers = { ["content-type"] = "application/json", ["content-length"] = #body } }
    ngx.stop()
    local o = cjson.decode(table.concat(out))
    assert.are.equal(200, code)
    assert.is_nil(o.err, table.concat(out))
    assert.are.equal("table", o.transport)
    assert.are.equal(ndir .. "/bird.mp4", o.res.path)
    local seen = {}
    for _, e in ipairs(st.log()) do
      if e.path == "/vids/" .. bkey then seen[#seen + 1] = e.method .. (e.presigned and " presigned" or "") end
      if e.path == "/vids/" .. bkey then assert.are.equal("ok", e.signature) end
    end
    assert.are.same({ "HEAD", "PUT", "GET presigned", "DELETE" }, seen)
    local t = emu:tasks()[#emu:tasks()]
    assert.are.same({ 200, #bytes, core.hash(bytes) }, { t.fetched[1].status, t.fetched[1].bytes, t.fetched[1].hash })
    assert.is_true(st.read(bkey).missing)
  end)
end)
