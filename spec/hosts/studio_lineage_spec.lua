-- A card's children in the studio (docs/studio.md, examples/studio/lua/studio/lineage.lua) in the real host:
-- tools/studio.sh's nginx with STUDIO_REFS (a bucket of s3rver behind the specs' SigV4 proxy:
-- rocks/s3/spec/support/s3_run.lua)
-- against the emulator, in Debian's chromium (spec/hosts/support/studio_browser.js, phases "lineage" and
-- "lineage_back").  A prompt sent and saved; its card's "continue" (to an end frame's URL), "again" (a new prompt)
-- and "remix" each make one create and a child card that names its parent, linked to the parent's card, whose video
-- plays; a continue without its end frame refused with the library's message, nothing sent.  The journal holds the
-- lineage (client:tasks{parent = id}); a reload and a restart show the same parents.  Restarted without a bucket, a
-- remix and a continue are refused naming STUDIO_REFS, nothing sent (the parent's URL still valid); over HTTP, a
-- child of another browser's card and bodies a child does not take are refused; and a continue's ffmpeg (one on
-- the studio's PATH that waits until nginx has answered this spec) holds no worker.  Waits for conditions, never
-- for a time.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("a card's children in the studio", { "/usr/sbin/nginx", "curl" }) then return end
local helper = require "spec.helper"
local studio_run = require "spec.hosts.support.studio_run"
local S3run = require("spec.support.places").fixture("s3")
local starvideos = require "starvideos"
local cjson = require "cjson.safe"

local q = helper.shell_quote
local KEY = "sk-studio-lineage-FAKE"
local PROMPT = "A lighthouse at dusk, waves below"

local why = studio_run.missing() or S3run.missing()
  or (not helper.execute("command -v ffmpeg >/dev/null 2>&1") and "ffmpeg is not installed (apt-get install ffmpeg)")
if why then
  describe("a card's children in the studio", function() pending(why) end)
  return
end

-- The emulator's task of id: its create's params.
local function made(emu, id)
  for _, t in ipairs(emu:tasks()) do if t.id == id then return t.params end end
  error("the emulator has no task " .. tostring(id))
end

-- The SHA-256 of the file at path, in hex.
local function sha256(path)
  return (assert(helper.capture("sha256sum " .. q(path)):match("^(%x+)"), path))
end

-- The cards of a list by key.
local function by_key(list)
  local out = {}
  for _, c in ipairs(list) do out[c.key] = c end
  return out
end

-- The studio's cookie of the browser whose state the browser's phases kept in dir.
local function cookie(dir)
  local state = assert(cjson.decode(helper.read_file(dir .. "/state.json")))
  for _, c in ipairs(state.cookies) do if c.name == "studio_tenant" then return c.value end end
end

-- A continue of the card parent (its end frame from emu) POSTed as the browser of cookie mine does: its card's key.
local function post_continue(url, mine, parent, emu)
  local status, text = studio_run.post(url, mine, cjson.encode { from = parent, relation = "continue",
    last_image = emu.url .. "/media/end.png?w=320&h=240" })
  assert.equal(202, status, text)
  return cjson.decode(text).key
end

-- The card key of the browser of cookie mine once it is saved or failed (nil after 60 s).
local function ended(url, mine, key)
  local card
  helper.wait_until(function()
    local list = helper.capture("curl -s -H " .. q("Cookie: studio_tenant=" .. mine) .. " " .. q(url .. "tasks"))
    for _, c in ipairs((cjson.decode(list) or {}).cards or {}) do
      if c.key == key and (c.state == "saved" or c.state == "failed") then card = c end
    end
    return card
  end, 60)
  return card
end

describe("a card's children in the studio", function()
  local emu, st, dir, port, proc, url, seen

  lazy_setup(function()
    st = S3run.start {}
    emu = helper.emulator { key = KEY, queued = 0, processing = 1 }
    dir = helper.tmpdir()
    assert(helper.execute("chmod 755 " .. q(dir))) -- (started as root, the studio's workers are nobody)
    port = helper.free_ports(1)[1]
    proc, url = studio_run.start(dir, port, emu, { STUDIO_TENANT_LIMIT = "", STUDIO_REFS = "s3://vids/refs/",
      AWS_ENDPOINT_URL = st.url, AWS_ACCESS_KEY_ID = "S3RVER", AWS_SECRET_ACCESS_KEY = "S3RVER" })
  end)

  lazy_teardown(function()
    if proc then studio_run.stop(proc, port) end
    if emu then emu:stop() end
    if st then st.stop() end
    if seen and helper.exists(dir .. "/lineage.png") then
      helper.execute("cp " .. q(dir .. "/lineage.png") .. " /tmp/starvideos-studio-lineage.png")
      print("studio lineage screenshot: /tmp/starvideos-studio-lineage.png")
    end
    helper.cleanup()
  end)

  it("makes a card's continue, again and remix: child cards naming their parent, their videos playing", function()
    local end_image = emu.url .. "/media/end.png?w=320&h=240"
    seen = studio_run.browser { phase = "lineage", url = url, prompt = PROMPT, end_image = end_image,
      continue_prompt = "The lamp lights up", again_prompt = "A lighthouse at night", state = dir .. "/state.json",
      screenshot = dir .. "/lineage.png" }
    local parent = seen.parent.key
    for _, how in ipairs { "continued", "again", "remix" } do
      local c = seen[how]
      assert.equal("saved", c.state, how .. ": " .. tostring(c.error))
      assert.equal("#card-" .. parent, c.href, how .. ": a link to the parent's card")
      assert.equal(parent, c.parent)
      assert.truthy(c.play and c.play.at, how .. "'s video plays: " .. tostring(c.play and c.play.failure))
      assert.truthy(c.play.t2 > c.play.t1, how .. "'s video advances")
    end
    assert.same({ "continue of " .. PROMPT, "again of " .. PROMPT, "remix of " .. PROMPT },
      { seen.continued.from, seen.again.from, seen.remix.from })
    assert.equal("#card-" .. parent, seen.followed)
    -- the continue without its end frame: the library's message on its card and above the form, nothing sent
    assert.equal("failed", seen.no_end.state)
    assert.matches("^continue: params%.last_image is required", seen.no_end.error)
    assert.equal(seen.no_end.error, seen.no_end_error)
    assert.equal(4, emu:creates(), "the parent and its three children; nothing for the refused")
    -- each child's create, as the library made it from the parent's
    local c = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/studio/tasks.jsonl" }
    local kids = assert(c:tasks { parent = assert(c:tasks {})[1].id })
    c:close()
    local rel = {}
    for _, k in ipairs(kids) do rel[k.relation] = made(emu, k.id) end
    assert.same({ "again", "continue", "remix" }, (function()
      local l = {}
      for r in pairs(rel) do l[#l + 1] = r end
      table.sort(l)
      return l
    end)())
    assert.same({ "videos", "A lighthouse at night", 5 }, { rel.again.model, rel.again.prompt, rel.again.duration })
    assert.equal(end_image, rel.continue.last_image)
    -- the continue's first frame and the remix's video, each named by its SHA-256 in the bucket: the frame ffmpeg
    -- took from the parent's video (beside the child's), and the parent's video itself
    local videos = dir .. "/studio/videos/"
    assert.truthy(rel.continue.first_image:find(st.url .. "/vids/refs/" .. sha256(videos .. seen.continued.key
      .. ".mp4.first.png") .. ".png?", 1, true), rel.continue.first_image)
    assert.truthy(rel.remix.referenceVideos[1]:find(st.url .. "/vids/refs/" .. sha256(videos .. parent .. ".mp4")
      .. ".mp4?", 1, true), rel.remix.referenceVideos[1])
    assert.same({ PROMPT, 5 }, { rel.remix.prompt, rel.remix.duration })
    -- a reload: the same children, the same parents
    local after = by_key(seen.after_reload)
    for _, how in ipairs { "continued", "again", "remix" } do
      assert.same(seen[how].from, after[seen[how].key].from, how .. " after a reload")
    end
  end)

  it("shows the same parents after a restart; without a bucket a remix and a continue are refused naming "
    .. "STUDIO_REFS, nothing sent (the parent's URL still valid)",
    function()
    assert(seen, "the first case ran")
    assert.truthy(studio_run.stop(proc, port), "nginx let go of its port")
    proc, url = studio_run.start(dir, port, emu, { STUDIO_TENANT_LIMIT = "" })
    -- (the parent's video_url still valid: the library alone would remix from it, and pay)
    local back = studio_run.browser { phase = "lineage_back", url = url, key = seen.parent.key,
      state = dir .. "/state.json" }
    local cards = by_key(back.cards)
    for _, how in ipairs { "continued", "again", "remix" } do
      local card = cards[seen[how].key]
      assert.same({ seen[how].from, seen[how].href, "saved" }, { card.from, card.href, card.state }, how)
    end
    assert.equal("failed", back.no_bucket.state)
    assert.equal("remix: the card's video is put into your bucket for the service to fetch: start the studio with "
      .. "STUDIO_REFS=s3://bucket/prefix/ (docs/studio.md) (nothing was sent)", back.no_bucket.error)
    assert.equal(back.no_bucket.error, back.no_bucket_error)
    -- a continue (its end frame given) over HTTP: its card fails the same way
    local mine = cookie(dir)
    local failed = ended(url, mine, post_continue(url, mine, seen.parent.key, emu))
    assert.same({ "failed", "continue: the card's last frame is put into your bucket for the service to fetch: "
      .. "start the studio with STUDIO_REFS=s3://bucket/prefix/ (docs/studio.md) (nothing was sent)" },
      { failed and failed.state, failed and failed.error }, cjson.encode(failed))
    assert.equal(4, emu:creates(), "nothing sent for the refused remix and continue, nothing again after the restart")
  end)

  it("refuses a child of another browser's card, an unknown relation and a field a child does not take: 0 creates",
    function()
    assert(seen, "the first case ran")
    local mine = cookie(dir)
    local from = seen.parent.key
    for _, case in ipairs {
      { studio_run.tenant(url), { from = from, relation = "again" }, 404, "from: no such card" },
      { mine, { from = "00ff", relation = "again" }, 404, "from: no such card" },
      { mine, { from = from, relation = "fork" }, 400, 'relation: expected "again", "remix" or "continue", got fork' },
      { mine, { from = from, relation = "again", model = "videos_fast" }, 400, "model: not taken by a card's again" },
      { mine, { from = from, relation = "remix", last_image = "https://example.com/e.png" }, 400,
        "last_image: taken by a continue only" },
      { mine, { from = from, relation = "continue", last_image = { file = "/etc/passwd" } }, 400,
        "last_image: expected a URL" },
    } do
      local status, text = studio_run.post(url, case[1], cjson.encode(case[2]))
      assert.same({ case[3], case[4] }, { status, (cjson.decode(text) or {}).error }, text)
    end
    assert.equal(4, emu:creates())
  end)

  it("answers while a continue's ffmpeg runs: the frame is taken without holding nginx's worker", function()
    assert(seen, "the first case ran")
    -- an ffmpeg on the studio's PATH that waits, once started, until this spec has had an answer from nginx
    local bin = dir .. "/bin"
    assert(helper.execute("mkdir -p " .. q(bin) .. " && chmod 777 " .. q(bin)))
    helper.write_file(bin .. "/ffmpeg", string.format("#!/bin/sh\ntouch %s\nwhile [ ! -e %s ]; do sleep 0.05; done\n"
      .. "exec %s \"$@\"\n", q(bin .. "/started"), q(bin .. "/go"),
      q((helper.capture("command -v ffmpeg"):gsub("%s+$", "")))))
    assert(helper.execute("chmod 755 " .. q(bin .. "/ffmpeg")))
    assert.truthy(studio_run.stop(proc, port), "nginx let go of its port")
    proc, url = studio_run.start(dir, port, emu, { STUDIO_TENANT_LIMIT = "", STUDIO_REFS = "s3://vids/refs/",
      AWS_ENDPOINT_URL = st.url, AWS_ACCESS_KEY_ID = "S3RVER", AWS_SECRET_ACCESS_KEY = "S3RVER",
      PATH = bin .. ":" .. os.getenv("PATH") })
    local mine = cookie(dir)
    local key = post_continue(url, mine, seen.parent.key, emu)
    assert.truthy(helper.wait_until(function() return helper.exists(bin .. "/started") end, 30), "ffmpeg ran")
    -- (a worker held by ffmpeg would answer nothing until it ends, and it ends only after this answer)
    local page = helper.capture("curl -s -m 20 -o /dev/null -w '%{http_code}' " .. q(url))
    helper.write_file(bin .. "/go", "")
    assert.equal("200", page, "the page, while ffmpeg runs")
    local saved = ended(url, mine, key)
    assert.same({ "saved", seen.parent.key, "continue" }, { saved and saved.state, saved and saved.parent,
      saved and saved.relation }, cjson.encode(saved))
    assert.equal(5, emu:creates())
  end)
end)
