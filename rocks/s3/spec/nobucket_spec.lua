-- A bucket that does not exist is refused before anything is paid (issue 55, item 7), against the docs' own local
-- S3 server (spec/npm/s3_server.js, docs/storage.md "Trying it locally"): the question asked before a create
-- (storage/object.lua's reach: ListMultipartUploads, `GET /BUCKET?uploads`) is answered for a missing bucket as S3
-- answers it, 404 NoSuchBucket (read back by the AWS SDK's own client: its error's name and status), so that
-- `generate --out s3://nobucket/x.mp4` creates nothing (counted at the emulator) and names the bucket.
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local s3_run = require "rocks.s3.spec.support.s3_run"

local q = helper.shell_quote
local KEY = "sk-s3-nobucket-93d0"
local why = s3_run.missing()

-- The AWS SDK's ListMultipartUploads of bucket at the store: {name =, status =} of its error, or {ok = true}.
local function sdk_list_uploads(st, bucket)
  local js = [[
process.removeAllListeners("warning");
const { S3Client, ListMultipartUploadsCommand } = require("@aws-sdk/client-s3");
const [endpoint, Bucket] = process.argv.slice(1);
const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
s3.send(new ListMultipartUploadsCommand({ Bucket })).then(() => process.stdout.write('{"ok": true}'),
  (e) => process.stdout.write(JSON.stringify({ name: e.name, status: e.$metadata && e.$metadata.httpStatusCode })));
]]
  return cjson.decode((helper.capture("cd " .. q(s3_run.NPM) .. " && node -e " .. q(js) .. " " .. q(st.url) .. " "
    .. q(bucket)))) or {}
end

describe("a bucket that does not exist #hosts", function()
  local emu, st
  s3_run.shared({ queued = 0, processing = 0.2, key = KEY }, function(s, e) st, emu = s, e end)

  it("is answered NoSuchBucket 404 by the specs' S3 server, as S3 answers ListMultipartUploads", function()
    if why then return pending(why) end
    assert.same({ name = "NoSuchBucket", status = 404 }, sdk_list_uploads(st, "nobucket"))
    assert.same({ ok = true }, sdk_list_uploads(st, "vids")) -- (the bucket it holds: listed)
  end)

  -- bin/starvideos with args (and a journal of dir's), against the emulator and the store: out and err, exit code.
  local function run(dir, args)
    local w = { "env", "-u", "STARVIDEOS_STORE", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL=" .. q(emu.url),
      "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER", "AWS_ENDPOINT_URL=" .. q(st.url), q(helper.lua),
      q(helper.root .. "/bin/starvideos") }
    for _, a in ipairs(args) do w[#w + 1] = q(a) end
    local out, _, code = helper.capture(table.concat(w, " ") .. " --journal " .. q(dir .. "/j.jsonl")
      .. " </dev/null 2>" .. q(dir .. "/stderr"))
    return out .. (helper.read_file(dir .. "/stderr") or ""), code
  end

  it("is refused before any create: generate --out s3://nobucket/x.mp4 creates nothing, names the bucket", function()
    if why then return pending(why) end
    local since = #st.log()
    local text, code = run(helper.tmpdir(), { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
      "--interval", "0.1", "--out", "s3://nobucket/x.mp4" })
    assert.are_not.equal(0, code, text)
    assert.matches("out: bucket nobucket does not exist: the store said", text, 1, true)
    assert.matches("NoSuchBucket", text, 1, true)
    assert.equal(0, emu:creates())
    -- (the proxy writes its line once it answered: the command may have ended before it is in the file)
    helper.wait_until(function() return #st.log() > since end, 5)
    local asked = {}
    for i, e in ipairs(st.log()) do
      if i > since then asked[#asked + 1] = string.format("%s %s %d", e.method, e.path, e.status) end
    end
    assert.same({ "GET /nobucket/ 404" }, asked) -- (asked once, answered as S3 does; nothing else sent)
  end)

  it("is refused before any create: batch --out-dir s3://nobucket/ creates nothing", function()
    if why then return pending(why) end
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/prompts.txt", "a cat\na dog\n")
    local text, code = run(dir, { "batch", "--prompts-file", dir .. "/prompts.txt", "--out-dir", "s3://nobucket/",
      "--model", "videos", "--duration", "5", "--interval", "0.1" })
    assert.are_not.equal(0, code, text)
    assert.matches("out: bucket nobucket does not exist: the store said", text, 1, true)
    assert.equal(0, emu:creates())
  end)
end)
