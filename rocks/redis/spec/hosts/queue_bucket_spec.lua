-- The queue (issue 80) into a bucket: 20 entries whose out is s3://vids/queue/NN.mp4 submitted on a store with 0
-- creates; 2 keepers (processes of their own, the bucket's keys in their `storage` option) create each once and save
-- it to its object: 20 creates counted at the emulator, each entry once, 20 objects whole (read back by the AWS SDK's
-- own client: the emulator's video byte for byte), the batch all saved.  Real servers: redis-server, s3rver behind the
-- specs' SigV4-checking proxy (rocks/s3/spec/support/s3_run.lua).
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local s3_run = require "rocks.s3.spec.support.s3_run"

local why = redis_run.missing(true) or s3_run.missing()
if why then
  describe("the queue into a bucket", function() pending(why) end)
  return
end
local queue_run = require "rocks.redis.spec.support.queue_run"
local sha256 = require("starvideos.sign").sha256
local starvideos = require "starvideos"

local KEY, N = "k-queue-bucket", 20
local SAMPLE = require("starvideos.emulator.files").video(5)

describe("the queue into a bucket", function()
  it("20 entries to s3:// outs submitted with 0 creates; 2 keepers create each once and save 20 whole objects",
    function()
    local dir = helper.tmpdir()
    local srv, emu = redis_run.start_pair { key = KEY, queued = 0.2, processing = 0.5 }
    local st, procs, c = nil, {}, nil
    finally(function()
      for _, p in ipairs(procs) do helper.execute("kill -9 " .. p.pid .. " 2>/dev/null"); p:close() end
      if c then c:close() end
      if st then st.stop() end
      redis_run.stop_pair(srv, emu)
    end)
    st = s3_run.start {}
    local opts = { api_key = KEY, base_url = emu.url, store = srv.url, requests_per_second = 20,
      storage = { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER" } }
    c = starvideos.new(opts)
    local b = assert(c:submit(queue_run.entries(N, "bucket"), { out = "s3://vids/queue/%02d.mp4" }))
    assert.same({ N, 0 }, { b.queued, b.known })
    assert.are.equal(0, emu:creates(), "submit sent nothing")
    for i = 1, N do assert.is_false(st.exists(string.format("queue/%02d.mp4", i)), "no object before") end

    for i = 1, 2 do procs[i] = queue_run.keeper(dir, "keeper" .. i, opts, helper.tmpdir(), 120, 2) end
    queue_run.saved(c, b.batch, N, 120, function() return queue_run.said(procs) end)
    local made, whole = queue_run.creates(emu), 0
    for i = 1, N do
      local key = string.format("queue/%02d.mp4", i) -- (the served video in it: up to the mark's box, st.video)
      local got = st.exists(key) and st.video(key)
      if got and got.served == #SAMPLE and got.served_sha256 == sha256(SAMPLE) then whole = whole + 1 end
    end
    io.stderr:write(string.format("\nqueue into a bucket: %d creates, %d entries created twice, %d whole objects\n",
      made.n, made.twice, whole))
    assert.are.equal(N, made.n)
    assert.are.equal(0, made.twice)
    assert.are.equal(N, whole)
    assert.are.equal(0, st.uploads_left(), "no upload left in the bucket")
    assert.same({ queued = 0, created = 0, saved = N, failed = 0, total = N }, c:batch(b.batch))
  end)
end)
