-- The matrix's nginx column (spec/support/matrix.lua's caller place "nginx": a handler inside nginx, on its
-- sockets), against the emulator counting creates: a handler's create of params the service will ignore is told
-- validate's warnings (warning events before the create, the task's warnings), the request sent as asked; a
-- handler's film of 2 shots (a journal its ledger) is 2 creates and one film, ffmpeg run in nginx's thread pool
-- (a /ping of the one worker answered while the join waits), and run again pays nothing; the film's provenance record
-- and a remix's (each video's, beside it) verify, and a generate's without a journal (the dict's counts).  A
-- generate's video carries the mark (issue 81: exiftool reads DigitalSourceType trainedAlgorithmicMedia; the served
-- bytes before its box), its record signed with a key the master read in init_by_lua (starvideos.sign_key; its file
-- gone before the request): `starvideos verify --pubkey` exits 0, 1 with another key.
local cjson = require "cjson.safe"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local cli = require "spec.support.cli_run"

local KEY = "k-places-nginx"
local q = helper.shell_quote

if nginx_run.pending_unless_ready("the nginx column", { "nginx", "curl", "ffmpeg", "ffprobe" }) then return end

-- A create of starvideos_o3 with a duration and a ratio beside a reference video: the events' order and the
-- task's warnings, as JSON.
local WARNED = [[
  local said = {}
  local c = require("starvideos").new { api_key = %q, base_url = %q, on_event = function(ev)
    if ev.type == "warning" then said[#said + 1] = "warning " .. ev.field end
    if ev.type == "request" and ev.method == "POST" then said[#said + 1] = "create" end
  end }
  local t, err = c:create { model = "starvideos_o3", prompt = "a cat surfing", duration = 8, ratio = "1:1",
    referenceVideos = { "https://example.com/ref.mp4" } }
  c:close()
  ngx.say(require("cjson").encode { order = said, warnings = t and t.warnings or tostring(err) })
]]

-- A film of 2 shots at ?out= with the journal ?journal=: its path and its shots' ids, or the error.
local FILM = [[
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q, journal = a.journal, interval = 0.1,
    min_interval = 0.1 }
  local r, err = c:film({ { model = "videos", prompt = "the road", duration = 4 },
    { model = "videos", prompt = "the road goes on", duration = 4 } }, { out = a.out })
  c:close()
  ngx.say(r and require("cjson").encode { path = r.path, ids = { r.shots[1].id, r.shots[2].id } } or tostring(err))
]]

-- A generate at ?out= and its remix at ?out=.remix.mp4 (the journal ?journal=): their paths, or the error.
local REMIX = [[
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q, journal = a.journal, interval = 0.1,
    min_interval = 0.1 }
  local p, err = c:generate({ model = "videos", prompt = "the sea", duration = 5 }, { out = a.out })
  local r, rerr = p and c:remix(p.id, { prompt = "the sea at night" }, { out = a.out .. ".remix.mp4" })
  c:close()
  ngx.say(r and require("cjson").encode { parent = p.path, path = r.path } or tostring(err or rerr))
]]

-- A generate at ?out= without a journal (the worker's dict its counts): its path, or the error.
local PLAIN = [[
  local c = require("starvideos").new { api_key = %q, base_url = %q, interval = 0.1, min_interval = 0.1 }
  local t, err = c:generate({ model = "videos", prompt = "the hill", duration = 5 }, { out = ngx.var.arg_out })
  c:close()
  ngx.say(t and t.path or tostring(err))
]]

-- A describe block's nginx and emulator stopped (either nil when it never started), its folders removed.
local function stop(ngx, emu)
  if ngx then ngx.stop() end
  if emu then emu:stop() end
  helper.cleanup()
end

-- A generate at ?out= (the journal ?journal=), its record signed with SIGN_KEY (init_by_lua's): the task as JSON.
local SIGNED = [[
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q, journal = a.journal, interval = 0.1,
    min_interval = 0.1, provenance = { sign_key = SIGN_KEY } }
  local t, err = c:generate({ model = "videos", prompt = "the marked hill", duration = 5 }, { out = a.out })
  c:close()
  ngx.say(t and require("cjson").encode { path = t.path, id = t.id, video_url = t.video_url } or tostring(err))
]]

describe("a handler inside nginx", function()
  local emu, dir, ngx

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
    dir = helper.tmpdir()
    -- ffmpeg as nginx's workers find it: the real one, which a join (concat) enters only once dir/release exists
    -- (dir/joining said first; dir/timedout if it waited 20 s in vain)
    os.execute("mkdir -p " .. q(dir .. "/bin"))
    helper.write_file(dir .. "/bin/ffmpeg", string.format([[#!/bin/sh
case " $* " in *" concat "*)
  touch %s; i=0
  while [ ! -e %s ]; do i=$((i+1)); [ $i -lt 400 ] || { touch %s; break; }; sleep 0.05; done;;
esac
exec %s "$@"
]], q(dir .. "/joining"), q(dir .. "/release"), q(dir .. "/timedout"), q(helper.capture("command -v ffmpeg")
      :gsub("%s+$", ""))))
    assert(helper.execute("chmod +x " .. q(dir .. "/bin/ffmpeg")))
    ngx = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 1)
      table.insert(lines, 3, "env PATH=" .. dir .. "/bin:/usr/local/bin:/usr/bin:/bin;")
      lines[#lines + 1] = "    lua_shared_dict starvideos 1m;" -- (a handler without a journal: the dict's counts)
      lines[#lines + 1] = "    server { listen 127.0.0.1:" .. port .. ";"
      for _, l in ipairs { { "/warned", WARNED:format(KEY, emu.url) }, { "/film", FILM:format(KEY, emu.url) },
        { "/remix", REMIX:format(KEY, emu.url) }, { "/plain", PLAIN:format(KEY, emu.url) },
        { "/ping", 'ngx.say("pong")' } } do
        lines[#lines + 1] = string.format("      location = %s { content_by_lua_block { %s } }", l[1], l[2])
      end
      lines[#lines + 1] = "    }\n}\n"
      return table.concat(lines, "\n")
    end)
  end)

  -- The body of a GET of path-and-query, without its last newline.
  local function get(what)
    return (helper.capture(string.format("curl -s -m 60 'http://127.0.0.1:%d%s'", ngx.port, what)):gsub("\n$", ""))
  end

  teardown(function() stop(ngx, emu) end)

  it("a create of params the service ignores: validate's warnings as events before the create and on the task",
    function()
      local before = emu:creates()
      local got = assert(cjson.decode(get("/warned")))
      assert.same({ "warning duration", "warning ratio", "create" }, got.order)
      assert.same({ { "duration", "referenceVideos" }, { "ratio", "referenceVideos" } },
        { { got.warnings[1].field, got.warnings[1].because }, { got.warnings[2].field, got.warnings[2].because } })
      assert.equal(before + 1, emu:creates())
      local posted
      for _, r in ipairs(emu:requests()) do if r.method == "POST" then posted = cjson.decode(r.body) end end
      assert.same({ 8, "1:1" }, { posted.duration, posted.ratio }, "sent as asked")
    end)

  it("film of 2 shots: 2 creates, one film ffmpeg joined in the thread pool (the worker answers meanwhile); run "
    .. "again, nothing paid", function()
    local before = emu:creates()
    local out = dir .. "/film.mp4"
    local query = "/film?journal=" .. dir .. "/j.jsonl&out=" .. out
    os.execute(string.format("curl -s -m 60 'http://127.0.0.1:%d%s' >%s &", ngx.port, query, q(dir .. "/film.out")))
    assert(helper.wait_until(function() return helper.exists(dir .. "/joining") end, 30), "the join began")
    assert.equal("pong", get("/ping"))
    assert.is_false(helper.exists(dir .. "/timedout"), "the worker answered while ffmpeg joined")
    helper.write_file(dir .. "/release", "")
    assert(helper.wait_until(function() return (helper.read_file(dir .. "/film.out") or ""):find("\n") end, 30))
    local got = assert(cjson.decode(helper.read_file(dir .. "/film.out")), helper.read_file(dir .. "/film.out"))
    assert.equal(out, got.path)
    assert.equal(before + 2, emu:creates())
    assert(helper.whole_mp4(out, 8))
    local again = get(query)
    assert.same(got, cjson.decode(again), again)
    assert.equal(before + 2, emu:creates(), "nothing paid again")
    local verified = cli.run { "verify", out } -- (the film's record names its shots' records: docs/lineage.md)
    assert.equal(0, verified.code, verified.err)
    assert.equal(3, select(2, verified.out:gsub("matches: ", "")), verified.out)
  end)

  it("a generate without a journal: its provenance record beside it, verify exits 0", function()
    local out = dir .. "/hill.mp4"
    assert.equal(out, get("/plain?out=" .. out))
    local rec = assert(cjson.decode((assert(helper.read_file(out .. ".json")))))
    assert.same({ "videos", require("starvideos.sign").sha256_file(out) }, { rec.model, rec.video.sha256 })
    local verified = cli.run { "verify", out }
    assert.equal(0, verified.code, verified.err)
  end)

  it("a generate and its remix: each video's provenance record beside it, the remix's naming its parent's by its "
    .. "SHA-256; verify exits 0", function()
    local got = assert(cjson.decode(get("/remix?journal=" .. dir .. "/r.jsonl&out=" .. dir .. "/sea.mp4")))
    local rec = assert(cjson.decode((assert(helper.read_file(got.path .. ".json")))))
    assert.same({ "remix", require("starvideos.sign").sha256(assert(helper.read_file(got.parent .. ".json"))) },
      { rec.parents[1].relation, rec.parents[1].record_sha256 })
    local verified = cli.run { "verify", got.path }
    assert.equal(0, verified.code, verified.err)
    assert.matches("matches: " .. got.parent, verified.out, 1, true)
  end)
end)

describe("a handler inside nginx whose signing key the master read (init_by_lua)", function()
  local emu, dir, ngx, priv, pub, other_pub
  local why = not helper.execute("command -v openssl >/dev/null 2>&1") and "openssl is not installed"

  setup(function()
    if why then return end
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
    dir = helper.tmpdir()
    priv, pub, other_pub = dir .. "/key.pem", dir .. "/pub.pem", dir .. "/other.pub.pem"
    assert(helper.execute("openssl genpkey -algorithm ed25519 -out " .. q(priv) .. " 2>/dev/null"))
    assert(helper.execute("openssl pkey -in " .. q(priv) .. " -pubout -out " .. q(pub)))
    assert(helper.execute("openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -out "
      .. q(other_pub)))
    ngx = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 2)
      -- (the master reads the key; the workers it forks sign with it: docs/openresty.md#signed-records)
      lines[#lines + 1] = string.format('    init_by_lua_block { SIGN_KEY = require("starvideos").sign_key(%q) }', priv)
      lines[#lines + 1] = "    server { listen 127.0.0.1:" .. port .. ";"
      lines[#lines + 1] = "      location = /signed { content_by_lua_block { " .. SIGNED:format(KEY, emu.url) .. " } }"
      lines[#lines + 1] = "    }\n}\n"
      return table.concat(lines, "\n")
    end)
  end)

  teardown(function() stop(ngx, emu) end)

  it("a generate: its video marked (exiftool reads DigitalSourceType trainedAlgorithmicMedia; the served bytes "
    .. "before the box), its record signed in the worker with the key read at init (its file gone): verify --pubkey "
    .. "exits 0, 1 with another key; the key in no log", function()
    if why then pending(why) return end
    local secret = assert(helper.read_file(priv)):gsub("%-%-%-%-%-[^\n]*\n?", ""):gsub("%s", "")
    os.remove(priv) -- (a worker that read the file now would find none: the master read it at init)
    local out = dir .. "/marked.mp4"
    local said = helper.capture(string.format("curl -s -m 60 'http://127.0.0.1:%d/signed?journal=%s&out=%s'",
      ngx.port, dir .. "/j.jsonl", out))
    local task = assert(cjson.decode(said), said .. (helper.read_file(dir .. "/error.log") or ""))
    assert.equal(out, task.path)
    -- the mark: the served bytes, then one top-level uuid box of the XMP UUID that says what the video is
    local Mark = require "starvideos.mark"
    local served = helper.capture("curl -s " .. q(task.video_url))
    local saved = assert(helper.read_file(out))
    assert.is_true(#served > 1000 and helper.unmarked(saved) == served, "the file is not the served video first")
    assert.is_true(#saved > #served, "the file has no mark after the served bytes")
    assert.equal("uuid" .. Mark.UUID, saved:sub(#served + 5, #served + 24))
    assert.truthy(saved:find(Mark.SOURCE, #served + 1, true), "the box says trainedAlgorithmicMedia")
    if helper.execute("command -v exiftool >/dev/null 2>&1") then
      local tags = assert(helper.json(helper.capture("exiftool -j -XMP:all " .. q(out))))[1]
      assert.same({ Mark.SOURCE, task.id }, { tags.DigitalSourceType, tags.TaskId })
    end
    -- the record: the marked file's SHA-256, signed by the key read at init
    local rec = assert(cjson.decode((assert(helper.read_file(out .. ".json")))))
    assert.same({ require("starvideos.sign").sha256_file(out), "xmp" }, { rec.video.sha256, rec.mark })
    assert.equal("ed25519", rec.signature and rec.signature.alg)
    local good = cli.run { "verify", out, "--pubkey", pub }
    assert.equal(0, good.code, good.out .. good.err)
    assert.matches("signed: " .. out .. ".json by key " .. rec.signature.key_id, good.out, 1, true)
    local other = cli.run { "verify", out, "--pubkey", other_pub }
    assert.equal(1, other.code, other.out .. other.err)
    for what, text in pairs { ["the record"] = helper.read_file(out .. ".json"), ["error.log"] =
        helper.read_file(dir .. "/error.log") or "", ["the answer"] = said } do
      assert.is_nil(text:find(secret, 1, true), "the private key is in " .. what)
    end
  end)
end)
