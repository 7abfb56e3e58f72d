-- Warnings (docs/reference.md "Warnings"): where the service will ignore what was asked, the core's validator
-- says so from the models' table; starvideos.validate returns them, client:plan's entries carry them, a create's
-- job emits each as a `warning` event before the create is sent and sets them on its tasks; the emulator, which
-- validates with the same core, ignores those fields as the service does.  No warning where the service takes
-- what was asked.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local VIDEO, IMG, IMG2, AUDIO = "https://example.com/ref.mp4", "https://example.com/a.png", "https://example.com/b.png",
  "https://example.com/a.mp3"

-- The documents' words (shared/api/), copied: api/000 lines 44 and 50 (starvideos_o3's duration and ratio "When
-- using referenceVideos ... this field is ignored"; "the output duration and aspect ratio are determined by the
-- reference video", "the aspect ratio follows the reference video’s dimensions"); api/001 line 236, api/003 line
-- 164, api/004 line 251 (the legacy aliases: "When both are present with the same value, first_image/last_image
-- take precedence").
local DURATION = "duration: ignored by starvideos_o3 beside referenceVideos (the output duration is determined by "
  .. "the reference video)"
local RATIO = "ratio: ignored by starvideos_o3 beside referenceVideos (the aspect ratio follows the reference "
  .. "video's dimensions)"
local function image(model)
  return "image: ignored by " .. model .. " beside first_image (the same URL; first_image takes precedence over its "
    .. "legacy alias)"
end
local function last_frame(model)
  return "lastFrameImage: ignored by " .. model .. " beside last_image (the same URL; last_image takes precedence "
    .. "over its legacy alias)"
end

local VIDEOS_MODELS = { "videos", "videos_fast", "videos_stable", "videos_stable_fast" }

local function req(model, extra)
  local p = { model = model, prompt = "a cat surfing", duration = model ~= "starvideos_o3" and 5 or nil }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- Every documented case: params, and the warnings expected ({field, because, message}).
local function cases()
  local list = {
    { req("starvideos_o3", { duration = 8, referenceVideos = { VIDEO } }),
      { { field = "duration", because = "referenceVideos", message = DURATION } } },
    { req("starvideos_o3", { ratio = "16:9", referenceVideos = { VIDEO } }),
      { { field = "ratio", because = "referenceVideos", message = RATIO } } },
    { req("starvideos_o3", { duration = 8, ratio = "1:1", referenceVideos = { VIDEO }, referenceImages = { IMG } }),
      { { field = "duration", because = "referenceVideos", message = DURATION },
        { field = "ratio", because = "referenceVideos", message = RATIO } } },
  }
  for _, m in ipairs(VIDEOS_MODELS) do
    list[#list + 1] = { req(m, { first_image = IMG, image = IMG, last_image = IMG2 }),
      { { field = "image", because = "first_image", message = image(m) } } }
    list[#list + 1] = { req(m, { first_image = IMG, last_image = IMG2, lastFrameImage = IMG2 }),
      { { field = "lastFrameImage", because = "last_image", message = last_frame(m) } } }
    list[#list + 1] = { req(m, { first_image = IMG, image = IMG, last_image = IMG2, lastFrameImage = IMG2 }),
      { { field = "image", because = "first_image", message = image(m) },
        { field = "lastFrameImage", because = "last_image", message = last_frame(m) } } }
  end
  return list
end

-- Requests the service takes as asked, of every model and mode.
local function clean()
  local list = {
    req("starvideos_o3"), req("starvideos_o3", { duration = 8, ratio = "16:9" }),
    req("starvideos_o3", { duration = 15, referenceImages = { IMG, IMG2 } }),
    req("starvideos_o3", { ratio = "1:1", first_image = IMG, last_image = IMG2 }),
    req("starvideos_o3", { referenceVideos = { VIDEO } }),
    req("starvideos_o3", { referenceVideos = { VIDEO }, referenceImages = { IMG } }),
  }
  for _, m in ipairs(VIDEOS_MODELS) do
    list[#list + 1] = req(m, { ratio = "16:9", resolution = "720p" })
    list[#list + 1] = req(m, { first_image = IMG, last_image = IMG2 })
    list[#list + 1] = req(m, { image = IMG, lastFrameImage = IMG2 }) -- (the legacy fields alone: taken)
    list[#list + 1] = req(m, { image = IMG, last_image = IMG2 })
    list[#list + 1] = req(m, { duration = 15, referenceVideos = { VIDEO }, referenceImages = { IMG } })
    if m ~= "videos_fast" then list[#list + 1] = req(m, { referenceAudios = { AUDIO }, referenceImages = { IMG } }) end
  end
  return list
end

describe("warnings", function()
  describe("validate", function()
    it("says each documented case, in the documents' words", function()
      for _, c in ipairs(cases()) do
        local ok, warnings = starvideos.validate(c[1])
        assert.is_true(ok, c[1].model)
        assert.same(c[2], warnings, c[1].model)
      end
    end)

    it("says nothing where the service takes what was asked, on every model", function()
      local list, seen = clean(), {}
      for _, p in ipairs(list) do seen[p.model] = true end
      for name in pairs(starvideos.models) do assert.is_true(seen[name], name .. " has no clean case") end
      for i, p in ipairs(list) do
        local ok, warnings = starvideos.validate(p)
        assert.is_true(ok, "clean case " .. i .. " refused: " .. tostring(warnings))
        assert.same({}, warnings, "clean case " .. i .. " (" .. p.model .. ")")
      end
    end)

    it("an invalid request has its error, not warnings: a legacy alias that differs is a conflict", function()
      local ok, err = starvideos.validate(req("videos", { first_image = IMG, image = IMG2, last_image = IMG2 }))
      assert.is_nil(ok)
      assert.equal("image", err.field)
      ok, err = starvideos.validate(req("starvideos_o3", { duration = 99, referenceVideos = { VIDEO } }))
      assert.is_nil(ok)
      assert.equal("duration", err.field)
    end)

    it("comes from the models' table (starvideos.models[m].ignored)", function()
      local o3 = starvideos.models.starvideos_o3.ignored
      assert.same({ "duration", "referenceVideos" }, { o3[1].field, o3[1].when })
      assert.same({ "ratio", "referenceVideos" }, { o3[2].field, o3[2].when })
      assert.is_nil(o3[3])
      for _, m in ipairs(VIDEOS_MODELS) do
        local ig = starvideos.models[m].ignored
        assert.same({ "image", "first_image", "lastFrameImage", "last_image" },
          { ig[1].field, ig[1].when, ig[2].field, ig[2].when }, m)
      end
    end)
  end)

  describe("a create's", function()
    local emu
    shared_emulator({ queued = 0.05, processing = 0.05 }, function(e) emu = e end)

    local function client(events)
      return starvideos.new { api_key = emu.key, base_url = emu.url, min_interval = 0, preflight = false,
        on_event = function(ev) events[#events + 1] = ev end }
    end

    -- The events of types warning and request (a create's POST), in order, as "warning FIELD" or "create".
    -- The JSON bodies of the creates the emulator got, in order.
    local function sent()
      local list = {}
      for _, r in ipairs(emu:requests()) do
        if r.method == "POST" and r.path:find("^/v1/") then list[#list + 1] = helper.json(r.body) end
      end
      return list
    end

    local function order(events)
      local out = {}
      for _, ev in ipairs(events) do
        if ev.type == "warning" then out[#out + 1] = "warning " .. tostring(ev.field) end
        if ev.type == "request" and ev.method == "POST" then out[#out + 1] = "create" end
      end
      return out
    end

    it("plan shows them per entry, sending nothing and emitting nothing", function()
      local events = {}
      local c = client(events)
      local list = {}
      for i, cs in ipairs(cases()) do list[i] = cs[1] end
      list[#list + 1] = req("videos")
      local plan = c:plan(list)
      for i, cs in ipairs(cases()) do assert.same(cs[2], plan.entries[i].warnings, "entry " .. i) end
      assert.same({}, plan.entries[#list].warnings)
      assert.same({}, emu:requests())
      assert.same({}, order(events))
      c:close()
    end)

    it("generate: a warning event each before the create is sent, on the task; the emulator ignores them as the "
      .. "service does", function()
      local events = {}
      local c = client(events)
      local task = assert(c:generate(req("starvideos_o3", { duration = 8, ratio = "1:1",
        referenceVideos = { VIDEO } }), { interval = 0.05 }))
      assert.same({ "warning duration", "warning ratio", "create" }, order(events))
      assert.same({ DURATION, RATIO }, { events[1].message, events[2].message })
      assert.equal("referenceVideos", events[1].because)
      assert.same(cases()[3][2], task.warnings)
      assert.equal("completed", task.status)
      assert.equal(5, task.actualDuration, "the emulator ignored duration 8, as the service does")
      local body = sent()[1]
      assert.same({ 8, "1:1" }, { body.duration, body.ratio }, "the client sends what was asked")
      c:close()
    end)

    it("create and start: the tasks carry them, the events come once; a legacy alias is not sent", function()
      local events = {}
      local c = client(events)
      local task = assert(c:create(req("videos_fast", { first_image = IMG, image = IMG, last_image = IMG2 })))
      assert.same({ { field = "image", because = "first_image", message = image("videos_fast") } }, task.warnings)
      assert.same({ "warning image", "create" }, order(events))
      local body = sent()[1]
      assert.same({ IMG, IMG2 }, { body.first_image, body.last_image })
      assert.is_nil(body.image)
      local job = assert(c:start(req("starvideos_o3", { ratio = "16:9", referenceVideos = { VIDEO } }),
        { interval = 0.05 }))
      helper.wait_until(function() c:step(0.1); return job.done end, 10)
      assert.equal("completed", job.task.status)
      assert.same({ { field = "ratio", because = "referenceVideos", message = RATIO } }, job.task.warnings)
      assert.same({ "warning image", "create", "warning ratio", "create" }, order(events))
      c:close()
    end)

    it("none where the service takes what was asked: no event, an empty list on the task", function()
      local events = {}
      local c = client(events)
      local task = assert(c:generate(req("starvideos_o3", { duration = 8, referenceImages = { IMG } }),
        { interval = 0.05 }))
      assert.same({}, task.warnings)
      assert.equal(8, task.actualDuration, "duration taken")
      task = assert(c:create(req("videos", { image = IMG, lastFrameImage = IMG2 })))
      assert.same({}, task.warnings)
      assert.same({ "create", "create" }, order(events))
      c:close()
    end)
  end)
end)
