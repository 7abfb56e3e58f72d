-- Local validation: starvideos.validate, the capability table starvideos.models,
-- and client:create refusing an invalid request before any network traffic.
--
-- The numbers below are copied from shared/api/README.md ("Resolved rules"), not read
-- from the library, so a wrong row in starvideos.models fails here.

local starvideos = require "starvideos"
local core = require "starvideos.core"
local cjson = require "cjson"
local Create = require "starvideos.create"

local MODEL_NAMES = { "starvideos_o3", "videos", "videos_fast", "videos_stable", "videos_stable_fast" }

local EXPECTED = {
  starvideos_o3 = {
    endpoint = "/v1/starvideos/videos",
    duration = { min = 3, max = 15, required = false, default = 3 },
    ratios = { "9:16", "1:1", "16:9" },
    default_ratio = "9:16",
    bad_ratios = { "4:3", "21:9", "3:4" },
    resolutions = {},
    prompt_max = nil,
    max_images = 7,
    max_images_with_video = 4,
    max_videos = 1,
    max_audios = 0,
    legacy_aliases = false,
  },
  videos = {
    endpoint = "/v1/videos/videos",
    duration = { min = 4, max = 15, required = true, default = nil },
    ratios = { "21:9", "16:9", "4:3", "1:1", "3:4", "9:16" },
    default_ratio = "16:9",
    bad_ratios = { "2:1", "9:21", "16:10" },
    resolutions = { "720p" },
    prompt_max = nil,
    max_images = 9,
    max_images_with_video = 9,
    max_videos = 3,
    max_audios = 3,
    legacy_aliases = true,
  },
  videos_fast = {
    endpoint = "/v1/videos/videos",
    duration = { min = 4, max = 15, required = true, default = nil },
    ratios = { "16:9", "9:16", "1:1" },
    default_ratio = "16:9",
    bad_ratios = { "21:9", "4:3", "3:4" },
    resolutions = { "720p" },
    prompt_max = 1500,
    max_images = 4,
    max_images_with_video = 4,
    max_videos = 3,
    max_audios = 0,
    legacy_aliases = true,
  },
  videos_stable = {
    endpoint = "/v1/videos/videos",
    duration = { min = 4, max = 15, required = true, default = nil },
    ratios = { "16:9", "9:16", "1:1" },
    default_ratio = "16:9",
    bad_ratios = { "21:9", "4:3", "3:4" },
    resolutions = { "720p" },
    prompt_max = 5000,
    max_images = 4,
    max_images_with_video = 4,
    max_videos = 3,
    max_audios = 1,
    legacy_aliases = true,
  },
  videos_stable_fast = {
    endpoint = "/v1/videos/videos",
    duration = { min = 4, max = 15, required = true, default = nil },
    ratios = { "16:9", "9:16", "1:1" },
    default_ratio = "16:9",
    bad_ratios = { "21:9", "4:3", "3:4" },
    resolutions = { "720p" },
    prompt_max = 5000,
    max_images = 4,
    max_images_with_video = 4,
    max_videos = 3,
    max_audios = 1,
    legacy_aliases = true,
  },
}

local KNOWN_FIELDS = {
  "model", "prompt", "duration", "ratio", "resolution", "first_image", "last_image",
  "image", "lastFrameImage", "referenceImages", "referenceVideos", "referenceAudios",
}

local LIST_FIELDS = { "referenceImages", "referenceVideos", "referenceAudios" }

-- what a message may say when it found a table ("a table", "a list of 1", ...)
local TABLE_FOUND = { "table", "list" }

local NONE = setmetatable({}, { __tostring = function() return "NONE" end })

---------------------------------------------------------------------------- helpers

local function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then
    if #v > 40 then return string.format("%q..(%d bytes)", v:sub(1, 20), #v) end
    return string.format("%q", v)
  elseif t ~= "table" then
    return tostring(v)
  elseif depth > 2 then
    return "{...}"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = "[" .. show(k) .. "]=" .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function urls(n, kind)
  local ext = ({ image = "png", video = "mp4", audio = "mp3" })[kind or "image"]
  local list = {}
  for i = 1, n do
    list[i] = string.format("https://cdn.example.com/%s/%d.%s", kind or "image", i, ext)
  end
  return list
end

local FIRST = "https://cdn.example.com/frames/first.png"
local LAST = "https://cdn.example.com/frames/last.png"

-- A valid text-to-video request for `model`, with `changes` applied (NONE removes a field).
local function params(model, changes)
  local p = { model = model, prompt = "A cat riding a skateboard down a sunny street" }
  if EXPECTED[model] and EXPECTED[model].duration.required then p.duration = 5 end
  for k, v in pairs(changes or {}) do
    if v == NONE then p[k] = nil else p[k] = v end
  end
  return p
end

local function accepts(p)
  local ok, err = starvideos.validate(p)
  assert.is_true(ok, "expected " .. show(p) .. " to be accepted, got "
    .. (type(err) == "table" and tostring(err.message) or tostring(err)))
  return ok
end

local function contains_any(s, wanted)
  if type(wanted) ~= "table" then wanted = { wanted } end
  local low = s:lower()
  for _, w in ipairs(wanted) do
    if low:find(tostring(w):lower(), 1, true) then return true end
  end
  return false
end

-- Asserts that `p` is refused locally: kind, field (a name or a list of acceptable
-- names), a one-line message starting with "<field>:" and containing something of what
-- was found (`found`: a string or a list of acceptable fragments, case-insensitive).
local function refuses(p, field, found)
  local ok, err = starvideos.validate(p)
  local what = show(p)
  assert.is_nil(ok, "expected " .. what .. " to be refused")
  assert.is_table(err, "expected an error table for " .. what)
  assert.are.equal("invalid_request", err.kind, "kind for " .. what)
  if type(field) == "table" then
    local hit = false
    for _, f in ipairs(field) do hit = hit or f == err.field end
    assert.is_true(hit, "field for " .. what .. ": expected one of " .. show(field)
      .. ", got " .. show(err.field) .. " (message: " .. tostring(err.message) .. ")")
  else
    assert.are.equal(field, err.field, "field for " .. what .. " (message: "
      .. tostring(err.message) .. ")")
  end
  local msg = err.message
  assert.is_string(msg, "message for " .. what)
  assert.are.equal(err.field .. ":", msg:sub(1, #err.field + 1),
    "message should start with the field name: " .. msg)
  assert.is_nil(msg:find("[\r\n]"), "message should be one line: " .. msg)
  if found ~= nil then
    assert.is_true(contains_any(msg, found),
      "message should mention " .. show(found) .. ": " .. msg)
  end
  local line = tostring(err)
  assert.is_string(line)
  assert.is_nil(line:find("[\r\n]"), "tostring(err) should be one line: " .. line)
  assert.is_truthy(line:find(msg, 1, true), "tostring(err) should include the message: " .. line)
  return err
end

local function collect(list)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = v end
  return out
end

local function sorted(list)
  local out = collect(list)
  table.sort(out)
  return out
end

-- Where the VM honours __pairs (5.2 and later) starvideos.models is a proxy that
-- refuses every write.  On 5.1 and LuaJIT a table cannot be both iterable and
-- guarded against writes to its existing fields: there it is a plain copy that
-- refuses new keys, and writing an existing field changes nothing the client does.
local PAIRS_HONOURED = false
for _ in pairs(setmetatable({}, { __pairs = function() return next, { true }, nil end })) do PAIRS_HONOURED = true end

-- The rules the core enforces, whatever a caller wrote into starvideos.models.
local function rules_hold()
  local imgs = {}
  for i = 1, 10 do imgs[i] = "https://example.com/" .. i .. ".png" end
  assert.is_nil((starvideos.validate(params("videos", { duration = 16 }))))
  assert.is_nil((starvideos.validate(params("videos", { referenceImages = imgs }))))
  assert.is_nil((starvideos.validate(params("videos_fast", { ratio = "21:9" }))))
  assert.is_nil((starvideos.validate(params("videos_fast", { prompt = string.rep("a", 1501) }))))
  assert.is_true((starvideos.validate(params("videos", {}))))
end

-- Asserts that `t[key] = value` raises (or, on 5.1 and LuaJIT for an existing
-- field, that the write leaves the rules alone); puts the old value back either
-- way, so that one unprotected table does not spoil the tests that follow.
local function refuses_write(t, key, value)
  local old = t[key]
  local ok = pcall(function() t[key] = value end)
  if ok and not PAIRS_HONOURED and old ~= nil then
    rules_hold()
    rawset(t, key, old)
    return
  end
  if ok then pcall(rawset, t, key, old) end
  assert.is_false(ok, "writing " .. show(key) .. " should raise")
  assert.are.same(old, t[key])
end

local function each_model(fn)
  for _, name in ipairs(MODEL_NAMES) do fn(name, EXPECTED[name]) end
end

local VIDEOS_FAMILY = { "videos", "videos_fast", "videos_stable", "videos_stable_fast" }

---------------------------------------------------------------------------- models table

describe("starvideos.models", function()
  local models = starvideos.models

  it("lists exactly the five documented models", function()
    local names = {}
    for name in pairs(models) do names[#names + 1] = name end
    table.sort(names)
    assert.are.same(sorted(MODEL_NAMES), names)
  end)

  each_model(function(name, e)
    describe("row " .. name, function()
      it("has the documented endpoint", function()
        assert.are.equal(e.endpoint, models[name].endpoint)
      end)

      it("has the documented duration range", function()
        local d = models[name].duration
        assert.are.equal(e.duration.min, d.min)
        assert.are.equal(e.duration.max, d.max)
        assert.are.equal(e.duration.required, d.required)
        assert.are.equal(e.duration.default, d.default)
      end)

      it("has the documented ratios and default ratio", function()
        assert.are.same(sorted(e.ratios), sorted(models[name].ratios))
        assert.are.equal(e.default_ratio, models[name].default_ratio)
      end)

      it("has the documented resolutions", function()
        assert.are.same(e.resolutions, collect(models[name].resolutions))
      end)

      it("has the documented prompt limit", function()
        assert.are.equal(e.prompt_max, models[name].prompt_max)
      end)

      it("has the documented reference limits", function()
        local row = models[name]
        assert.are.equal(e.max_images, row.max_images)
        assert.are.equal(e.max_images_with_video, row.max_images_with_video)
        assert.are.equal(e.max_videos, row.max_videos)
        assert.are.equal(e.max_audios, row.max_audios)
      end)

      it("says whether the legacy image aliases exist", function()
        assert.are.equal(e.legacy_aliases, models[name].legacy_aliases)
      end)
    end)
  end)

  it("states the README numbers for the key rows", function()
    assert.are.equal(9, models.videos.max_images)
    assert.are.equal(7, models.starvideos_o3.max_images)
    assert.are.equal(4, models.starvideos_o3.max_images_with_video)
    assert.are.equal(1, models.starvideos_o3.max_videos)
    assert.are.equal(3, models.videos.max_audios)
    assert.are.equal(1, models.videos_stable.max_audios)
    assert.are.equal(0, models.videos_fast.max_audios)
    assert.are.equal(1500, models.videos_fast.prompt_max)
    assert.are.equal(5000, models.videos_stable_fast.prompt_max)
    assert.are.equal(3, models.starvideos_o3.duration.default)
    assert.are.equal(0, #models.starvideos_o3.resolutions)
  end)

  it("refuses adding a model", function()
    refuses_write(models, "videos_ultra", { endpoint = "/x" })
    assert.is_nil(models.videos_ultra)
  end)

  it("refuses replacing or removing a model row", function()
    refuses_write(models, "videos", {})
    refuses_write(models, "videos", nil)
    assert.are.equal(9, models.videos.max_images)
  end)

  it("refuses changing a field of a model row", function()
    refuses_write(models.videos, "max_images", 99)
    refuses_write(models.videos_fast, "prompt_max", nil)
    assert.are.equal(9, models.videos.max_images)
  end)

  it("refuses changing a model's duration range", function()
    refuses_write(models.videos.duration, "max", 60)
    assert.are.equal(15, models.videos.duration.max)
  end)

  it("refuses changing a model's ratio list", function()
    refuses_write(models.videos_fast.ratios, 1, "21:9")
    refuses_write(models.videos_fast.ratios, 4, "21:9")
    refuses(params("videos_fast", { ratio = "21:9" }), "ratio", "21:9")
  end)

  it("gives lists whose length operator works", function()
    assert.are.equal(3, #models.videos_fast.ratios)
    assert.are.equal(6, #models.videos.ratios)
    assert.are.equal(1, #models.videos.resolutions)
  end)
end)

---------------------------------------------------------------------------- validate: basics

describe("starvideos.validate", function()
  it("raises when params is not a table", function()
    assert.has_error(function() starvideos.validate() end)
    assert.has_error(function() starvideos.validate(nil) end)
    assert.has_error(function() starvideos.validate("videos") end)
    assert.has_error(function() starvideos.validate(42) end)
    assert.has_error(function() starvideos.validate(true) end)
  end)

  it("accepts a minimal text-to-video request for every model", function()
    each_model(function(name) accepts(params(name)) end)
  end)

  it("returns exactly true for a valid request", function()
    assert.are.equal(true, starvideos.validate(params("videos")))
  end)

  it("does not modify the params it checks", function()
    local p = params("videos", { referenceImages = urls(2), extra = { seed = 7 } })
    local before = show(p)
    accepts(p)
    assert.are.equal(before, show(p))
  end)

  it("gives an error whose tostring and concatenation read as one line", function()
    local _, err = starvideos.validate(params("videos", { duration = 99 }))
    local line = tostring(err)
    assert.is_nil(line:find("\n"))
    assert.is_truthy(line:find("duration", 1, true))
    local ok, joined = pcall(function() return "error: " .. err end)
    assert.is_true(ok, "\"text\" .. err should work: " .. tostring(joined))
    assert.is_truthy(joined:find("duration", 1, true))
    assert.is_nil(joined:find("\n"))
    assert.are.equal(line .. " (2)", err .. " (2)")
    assert.are.equal(line .. 7, err .. 7)
    assert.are.equal(line .. line, err .. err)
    assert.has_error(function() return err .. true end, "attempt to concatenate a boolean value")
    assert.has_error(function() return {} .. err end, "attempt to concatenate a table value")
  end)

  --------------------------------------------------------------------------- model

  describe("model", function()
    it("refuses a request without a model", function()
      refuses({ prompt = "a cat", duration = 5 }, "model", { "required", "missing", "nil" })
    end)

    it("refuses an unknown model and names it", function()
      refuses(params("videos_turbo", { duration = 5 }), "model", "videos_turbo")
    end)

    it("refuses a model name in the wrong case", function()
      refuses(params("Videos", { duration = 5 }), "model", "Videos")
    end)

    it("refuses a model that is not a string", function()
      refuses({ model = 42, prompt = "a cat", duration = 5 }, "model", { "number", "42" })
      refuses({ model = { "videos" }, prompt = "a cat", duration = 5 }, "model", TABLE_FOUND)
    end)
  end)

  --------------------------------------------------------------------------- prompt

  describe("prompt", function()
    each_model(function(name)
      it("is required on " .. name, function()
        refuses(params(name, { prompt = NONE }), "prompt", { "required", "missing", "nil" })
      end)

      it("refuses an empty prompt on " .. name, function()
        refuses(params(name, { prompt = "" }), "prompt", { "empty", '""' })
      end)

      it("refuses a number prompt on " .. name, function()
        refuses(params(name, { prompt = 42 }), "prompt", { "number", "42" })
      end)

      it("refuses a table prompt on " .. name, function()
        refuses(params(name, { prompt = { "a cat" } }), "prompt", TABLE_FOUND)
      end)

      it("refuses a prompt that is not valid UTF-8 on " .. name, function()
        refuses(params(name, { prompt = "\255\254" }), "prompt", { "utf-8", "utf8" })
      end)

      it("accepts a multilingual prompt on " .. name, function()
        accepts(params(name, { prompt = "Un chat 猫 на скейтборде 🐈 déjà vu" }))
      end)
    end)

    it("refuses other malformed UTF-8 sequences", function()
      local bad = {
        "cat \226\130",          -- truncated 3-byte sequence
        "cat \192\175",          -- overlong encoding of '/'
        "cat \128 dog",          -- lone continuation byte
        "cat \237\160\128",      -- UTF-16 surrogate
        "cat \244\144\128\128",  -- beyond U+10FFFF
      }
      for _, prompt in ipairs(bad) do
        refuses(params("videos", { prompt = prompt }), "prompt", { "utf-8", "utf8" })
      end
    end)

    each_model(function(name, e)
      if e.prompt_max then
        it("accepts a " .. e.prompt_max .. "-character prompt on " .. name, function()
          accepts(params(name, { prompt = string.rep("a", e.prompt_max) }))
        end)

        it("refuses a " .. (e.prompt_max + 1) .. "-character prompt on " .. name, function()
          refuses(params(name, { prompt = string.rep("a", e.prompt_max + 1) }), "prompt",
            tostring(e.prompt_max + 1))
        end)

        it("counts characters, not bytes, at the limit on " .. name, function()
          local p = string.rep("é", e.prompt_max)
          assert.are.equal(2 * e.prompt_max, #p)
          accepts(params(name, { prompt = p }))
          accepts(params(name, { prompt = string.rep("🐈", e.prompt_max) }))
        end)

        it("counts characters, not bytes, one over the limit on " .. name, function()
          refuses(params(name, { prompt = string.rep("é", e.prompt_max + 1) }), "prompt",
            tostring(e.prompt_max + 1))
        end)
      else
        it("accepts a very long prompt on " .. name .. ", which has no stated limit", function()
          accepts(params(name, { prompt = string.rep("a", 6000) }))
          accepts(params(name, { prompt = string.rep("é", 6000) }))
        end)
      end
    end)

    it("states the limits 1500 and 5000 from the README", function()
      assert.are.equal(1500, EXPECTED.videos_fast.prompt_max)
      accepts(params("videos_fast", { prompt = string.rep("é", 1500) }))
      refuses(params("videos_fast", { prompt = string.rep("é", 1501) }), "prompt", "1501")
      accepts(params("videos_stable", { prompt = string.rep("é", 5000) }))
      refuses(params("videos_stable", { prompt = string.rep("é", 5001) }), "prompt", "5001")
      accepts(params("videos_stable_fast", { prompt = string.rep("x", 5000) }))
      refuses(params("videos_stable_fast", { prompt = string.rep("x", 5001) }), "prompt", "5001")
    end)
  end)

  --------------------------------------------------------------------------- duration

  describe("duration", function()
    each_model(function(name, e)
      local d = e.duration

      it("accepts the bounds " .. d.min .. " and " .. d.max .. " on " .. name, function()
        accepts(params(name, { duration = d.min }))
        accepts(params(name, { duration = d.max }))
      end)

      it("refuses " .. (d.min - 1) .. " seconds on " .. name, function()
        refuses(params(name, { duration = d.min - 1 }), "duration", tostring(d.min - 1))
      end)

      it("refuses " .. (d.max + 1) .. " seconds on " .. name, function()
        refuses(params(name, { duration = d.max + 1 }), "duration", tostring(d.max + 1))
      end)

      it("refuses zero and negative durations on " .. name, function()
        refuses(params(name, { duration = 0 }), "duration", "0")
        refuses(params(name, { duration = -5 }), "duration", "-5")
      end)

      it("accepts an integral float such as 5.0 on " .. name, function()
        accepts(params(name, { duration = 5.0 }))
      end)

      it("refuses a fractional duration on " .. name, function()
        refuses(params(name, { duration = 5.5 }), "duration", "5.5")
      end)

      it("refuses a string duration on " .. name, function()
        refuses(params(name, { duration = "5" }), "duration", { "string", '"5"' })
      end)

      it("refuses a boolean or table duration on " .. name, function()
        refuses(params(name, { duration = true }), "duration", { "boolean", "true" })
        refuses(params(name, { duration = { 5 } }), "duration", TABLE_FOUND)
      end)

      it("refuses NaN and infinities on " .. name, function()
        refuses(params(name, { duration = 0 / 0 }), "duration", { "nan", "number" })
        refuses(params(name, { duration = math.huge }), "duration", { "inf", "number" })
        refuses(params(name, { duration = -math.huge }), "duration", { "inf", "number" })
      end)

      it("refuses huge integers on " .. name, function()
        local maxinteger = math.maxinteger -- luacheck: ignore 143 (5.3+; nil where numbers are doubles only)
        if maxinteger then
          refuses(params(name, { duration = maxinteger }), "duration", { tostring(maxinteger), "number" })
        else -- 5.1, 5.2, LuaJIT: 2^53, the largest whole number a double holds exactly
          refuses(params(name, { duration = 2 ^ 53 }), "duration", { "9007199254740992", "number" })
        end
        refuses(params(name, { duration = 2 ^ 63 }), "duration", { "e+", "number", "92233" })
      end)

      if d.required then
        it("is required on " .. name, function()
          refuses(params(name, { duration = NONE }), "duration", { "required", "missing", "nil" })
        end)
      else
        it("is optional on " .. name, function()
          accepts(params(name, { duration = NONE }))
        end)
      end
    end)

    it("uses the README ranges: 3-15 on o3, 4-15 on the videos family", function()
      accepts(params("starvideos_o3", { duration = 3 }))
      refuses(params("videos", { duration = 3 }), "duration", "3")
      refuses(params("videos_fast", { duration = 16 }), "duration", "16")
    end)
  end)

  --------------------------------------------------------------------------- ratio

  describe("ratio", function()
    each_model(function(name, e)
      it("accepts every documented ratio on " .. name, function()
        for _, r in ipairs(e.ratios) do accepts(params(name, { ratio = r })) end
      end)

      it("accepts an omitted ratio on " .. name, function()
        accepts(params(name, { ratio = NONE }))
      end)

      it("refuses ratios not offered by " .. name, function()
        for _, r in ipairs(e.bad_ratios) do
          refuses(params(name, { ratio = r }), "ratio", r)
        end
      end)

      it("refuses a malformed ratio string on " .. name, function()
        refuses(params(name, { ratio = "16x9" }), "ratio", "16x9")
        refuses(params(name, { ratio = "" }), "ratio", { '""', "empty" })
      end)

      it("refuses a table or number ratio on " .. name, function()
        refuses(params(name, { ratio = { "16:9" } }), "ratio", TABLE_FOUND)
        refuses(params(name, { ratio = 1.78 }), "ratio", { "number", "1.78" })
      end)
    end)

    it("refuses 21:9 on videos_fast but accepts it on videos", function()
      refuses(params("videos_fast", { ratio = "21:9" }), "ratio", "21:9")
      accepts(params("videos", { ratio = "21:9" }))
      refuses(params("starvideos_o3", { ratio = "4:3" }), "ratio", "4:3")
      accepts(params("videos", { ratio = "4:3" }))
    end)
  end)

  --------------------------------------------------------------------------- resolution

  describe("resolution", function()
    for _, name in ipairs(VIDEOS_FAMILY) do
      it("accepts 720p on " .. name, function()
        accepts(params(name, { resolution = "720p" }))
      end)

      it("refuses 1080p on " .. name, function()
        refuses(params(name, { resolution = "1080p" }), "resolution", "1080p")
      end)

      it("refuses a number resolution on " .. name, function()
        refuses(params(name, { resolution = 720 }), "resolution", { "number", "720" })
      end)
    end

    it("is refused as an unknown field on starvideos_o3", function()
      refuses(params("starvideos_o3", { resolution = "720p" }), "resolution")
    end)
  end)

  --------------------------------------------------------------------------- reference counts

  describe("reference counts", function()
    each_model(function(name, e)
      it("accepts " .. e.max_images .. " reference images on " .. name, function()
        accepts(params(name, { referenceImages = urls(e.max_images) }))
      end)

      it("refuses " .. (e.max_images + 1) .. " reference images on " .. name, function()
        refuses(params(name, { referenceImages = urls(e.max_images + 1) }), "referenceImages",
          tostring(e.max_images + 1))
      end)

      it("accepts " .. e.max_videos .. " reference videos on " .. name, function()
        accepts(params(name, { referenceVideos = urls(e.max_videos, "video") }))
      end)

      it("refuses " .. (e.max_videos + 1) .. " reference videos on " .. name, function()
        refuses(params(name, { referenceVideos = urls(e.max_videos + 1, "video") }),
          "referenceVideos", tostring(e.max_videos + 1))
      end)

      it("accepts " .. e.max_images_with_video .. " images with a video on " .. name, function()
        accepts(params(name, {
          referenceImages = urls(e.max_images_with_video),
          referenceVideos = urls(e.max_videos, "video"),
        }))
      end)

      it("refuses " .. (e.max_images_with_video + 1) .. " images with a video on " .. name, function()
        refuses(params(name, {
          referenceImages = urls(e.max_images_with_video + 1),
          referenceVideos = urls(1, "video"),
        }), "referenceImages", tostring(e.max_images_with_video + 1))
      end)

      if e.max_audios > 0 then
        it("accepts " .. e.max_audios .. " reference audios on " .. name, function()
          accepts(params(name, {
            referenceImages = urls(1),
            referenceAudios = urls(e.max_audios, "audio"),
          }))
        end)

        it("refuses " .. (e.max_audios + 1) .. " reference audios on " .. name, function()
          refuses(params(name, {
            referenceImages = urls(1),
            referenceAudios = urls(e.max_audios + 1, "audio"),
          }), "referenceAudios", tostring(e.max_audios + 1))
        end)

        it("accepts every reference kind at its limit together on " .. name, function()
          accepts(params(name, {
            referenceImages = urls(e.max_images_with_video),
            referenceVideos = urls(e.max_videos, "video"),
            referenceAudios = urls(e.max_audios, "audio"),
          }))
        end)
      else
        it("refuses any reference audio on " .. name, function()
          refuses(params(name, {
            referenceImages = urls(1),
            referenceAudios = urls(1, "audio"),
          }), "referenceAudios")
          refuses(params(name, { referenceAudios = urls(1, "audio") }), "referenceAudios")
        end)

        it("accepts an empty audio list on " .. name, function()
          accepts(params(name, { referenceImages = urls(1), referenceAudios = {} }))
        end)
      end
    end)

    it("lets starvideos_o3 take 7 images alone but only 4 with a video", function()
      accepts(params("starvideos_o3", { referenceImages = urls(7) }))
      refuses(params("starvideos_o3", { referenceImages = urls(8) }), "referenceImages", "8")
      accepts(params("starvideos_o3", {
        referenceImages = urls(4), referenceVideos = urls(1, "video"),
      }))
      refuses(params("starvideos_o3", {
        referenceImages = urls(7), referenceVideos = urls(1, "video"),
      }), "referenceImages", "7")
      refuses(params("starvideos_o3", {
        referenceImages = urls(5), referenceVideos = urls(1, "video"),
      }), "referenceImages", "5")
    end)

    it("treats an empty video list on starvideos_o3 as no video", function()
      accepts(params("starvideos_o3", { referenceImages = urls(7), referenceVideos = {} }))
    end)

    it("uses the README counts: 9 images on videos, 4 on the others, 3 audios on videos", function()
      accepts(params("videos", { referenceImages = urls(9) }))
      refuses(params("videos", { referenceImages = urls(10) }), "referenceImages", "10")
      refuses(params("videos_fast", { referenceImages = urls(5) }), "referenceImages", "5")
      refuses(params("starvideos_o3", { referenceVideos = urls(2, "video") }), "referenceVideos", "2")
      accepts(params("videos", { referenceImages = urls(1), referenceAudios = urls(3, "audio") }))
      refuses(params("videos_stable", {
        referenceImages = urls(1), referenceAudios = urls(2, "audio"),
      }), "referenceAudios", "2")
    end)
  end)

  --------------------------------------------------------------------------- lists

  describe("reference lists", function()
    local KIND = { referenceImages = "image", referenceVideos = "video", referenceAudios = "audio" }

    -- a videos request (it takes every kind of reference) carrying `value` as `list`;
    -- audios come with an image, as the API pairs them with reference media
    local function with_list(list, value)
      local changes = { [list] = value }
      if list == "referenceAudios" then changes.referenceImages = urls(1) end
      return params("videos", changes)
    end

    for _, list in ipairs(LIST_FIELDS) do
      local kind = KIND[list]

      it("accepts a proper " .. list .. " sequence", function()
        accepts(with_list(list, urls(2, kind)))
      end)

      it("refuses " .. list .. " given as a string", function()
        local u = urls(1, kind)[1]
        refuses(with_list(list, u), list, { "string", u })
      end)

      it("refuses " .. list .. " given as a number or boolean", function()
        refuses(with_list(list, 3), list, { "number", "3" })
        refuses(with_list(list, true), list, { "boolean", "true" })
      end)

      it("refuses " .. list .. " with a hole", function()
        local l = urls(3, kind)
        l[2] = nil
        refuses(with_list(list, l), { list, list .. "[2]" })
      end)

      it("refuses " .. list .. " with a string key", function()
        local l = urls(1, kind)
        l.first = urls(2, kind)[2]
        refuses(with_list(list, l),
          { list, list .. ".first", list .. '["first"]', list .. "[first]" })
      end)

      it("refuses " .. list .. " with a fractional or zero key", function()
        local l = urls(1, kind)
        l[1.5] = urls(2, kind)[2]
        refuses(with_list(list, l), { list, list .. "[1.5]" })
        refuses(with_list(list, { [0] = urls(1, kind)[1] }), { list, list .. "[0]" })
      end)

      it("refuses a non-string element in " .. list .. " and names its 1-based index", function()
        local l = urls(3, kind)
        l[3] = 42
        refuses(with_list(list, l), list .. "[3]", { "number", "42" })
      end)

      it("refuses a table element in " .. list, function()
        local l = urls(2, kind)
        l[2] = { url = "https://cdn.example.com/x" }
        refuses(with_list(list, l), list .. "[2]", TABLE_FOUND)
      end)

      it("does not treat a non-sequence " .. list .. " as an empty list", function()
        refuses(params("videos", {
          first_image = FIRST, last_image = LAST, [list] = { x = urls(1, kind)[1] },
        }), { list, list .. ".x", list .. '["x"]', list .. "[x]" })
      end)

      it("treats an empty " .. list .. " as absent", function()
        accepts(params("videos", { [list] = {} }))
      end)
    end
  end)

  --------------------------------------------------------------------------- URLs

  describe("URLs", function()
    local BAD_URLS = {
      "ftp://x/a.png",
      "./cat.png",
      "file:///etc/passwd",
      "http://",
      "https://",
      "http:///a.png",
      "cat.png",
      "//cdn.example.com/a.png",
      "data:image/png;base64,iVBORw0KGgo=",
      "javascript:alert(1)",
    }
    local GOOD_URLS = {
      "https://cdn.example.com/a.png",
      "http://cdn.example.com/a.png",
      "http://127.0.0.1:8080/a.png",
      "https://cdn.example.com:8443/v/a.png?sig=abc&exp=1700000000",
      "https://cdn.example.com",
    }

    it("accepts http and https URLs with a host in every URL field", function()
      for _, u in ipairs(GOOD_URLS) do
        accepts(params("videos", { first_image = u, last_image = u }))
        accepts(params("videos", { image = u, lastFrameImage = u }))
        accepts(params("videos", {
          referenceImages = { u }, referenceVideos = { u }, referenceAudios = { u },
        }))
      end
    end)

    for _, bad in ipairs(BAD_URLS) do
      it("refuses " .. show(bad) .. " in first_image and last_image", function()
        refuses(params("videos", { first_image = bad, last_image = LAST }), "first_image", bad)
        refuses(params("videos", { first_image = FIRST, last_image = bad }), "last_image", bad)
      end)

      it("refuses " .. show(bad) .. " in the legacy image and lastFrameImage", function()
        refuses(params("videos", { image = bad, lastFrameImage = LAST }), "image", bad)
        refuses(params("videos", { image = FIRST, lastFrameImage = bad }), "lastFrameImage", bad)
      end)

      it("refuses " .. show(bad) .. " in each reference list, naming its index", function()
        local imgs = urls(3)
        imgs[3] = bad
        refuses(params("videos", { referenceImages = imgs }), "referenceImages[3]", bad)
        local vids = urls(2, "video")
        vids[2] = bad
        refuses(params("videos", { referenceVideos = vids }), "referenceVideos[2]", bad)
        refuses(params("videos", { referenceImages = urls(1), referenceAudios = { bad } }),
          "referenceAudios[1]", bad)
      end)
    end

    it("refuses the README example ./cat.png as referenceImages[3]", function()
      local imgs = urls(3)
      imgs[3] = "./cat.png"
      refuses(params("videos", { referenceImages = imgs }), "referenceImages[3]", '"./cat.png"')
    end)

    it("refuses URLs in first frames on starvideos_o3 too", function()
      refuses(params("starvideos_o3", { first_image = "./cat.png", last_image = LAST }),
        "first_image", "./cat.png")
      refuses(params("starvideos_o3", { referenceImages = { "file:///etc/passwd" } }),
        "referenceImages[1]", "file:///etc/passwd")
    end)

    it("refuses an empty-string URL", function()
      refuses(params("videos", { first_image = "", last_image = LAST }), "first_image")
      refuses(params("videos", { referenceImages = { "" } }), "referenceImages[1]")
    end)

    it("refuses a URL that is a number or a table", function()
      refuses(params("videos", { first_image = 42, last_image = LAST }), "first_image",
        { "number", "42" })
      refuses(params("videos", { first_image = FIRST, last_image = { LAST } }), "last_image",
        TABLE_FOUND)
      refuses(params("videos", { image = 7, lastFrameImage = LAST }), "image", { "number", "7" })
    end)
  end)

  --------------------------------------------------------------------------- modes

  describe("first/last frame mode", function()
    each_model(function(name, e)
      it("accepts first_image with last_image on " .. name, function()
        accepts(params(name, { first_image = FIRST, last_image = LAST }))
      end)

      it("names last_image when first_image comes alone on " .. name, function()
        refuses(params(name, { first_image = FIRST }), "last_image")
      end)

      it("names first_image when last_image comes alone on " .. name, function()
        refuses(params(name, { last_image = LAST }), "first_image")
      end)

      it("names referenceImages when frames are mixed with images on " .. name, function()
        refuses(params(name, {
          first_image = FIRST, last_image = LAST, referenceImages = urls(1),
        }), "referenceImages")
      end)

      it("names referenceVideos when frames are mixed with videos on " .. name, function()
        refuses(params(name, {
          first_image = FIRST, last_image = LAST, referenceVideos = urls(1, "video"),
        }), "referenceVideos")
      end)

      it("names referenceAudios when frames are mixed with audios on " .. name, function()
        refuses(params(name, {
          first_image = FIRST, last_image = LAST, referenceAudios = urls(1, "audio"),
        }), "referenceAudios")
      end)

      it("accepts frames with empty reference lists on " .. name, function()
        accepts(params(name, {
          first_image = FIRST, last_image = LAST,
          referenceImages = {}, referenceVideos = {}, referenceAudios = {},
        }))
      end)

      if e.legacy_aliases then
        it("accepts the legacy image and lastFrameImage on " .. name, function()
          accepts(params(name, { image = FIRST, lastFrameImage = LAST }))
          accepts(params(name, { image = FIRST, last_image = LAST }))
          accepts(params(name, { first_image = FIRST, lastFrameImage = LAST }))
        end)

        it("accepts a legacy alias holding the same value as its new field on " .. name, function()
          accepts(params(name, { first_image = FIRST, image = FIRST, last_image = LAST }))
          accepts(params(name, { first_image = FIRST, last_image = LAST, lastFrameImage = LAST }))
          accepts(params(name, {
            first_image = FIRST, image = FIRST, last_image = LAST, lastFrameImage = LAST,
          }))
        end)

        it("names image when it conflicts with first_image on " .. name, function()
          refuses(params(name, {
            first_image = FIRST, image = "https://cdn.example.com/other.png", last_image = LAST,
          }), "image", { "first_image", "conflict", "other.png" })
        end)

        it("names lastFrameImage when it conflicts with last_image on " .. name, function()
          refuses(params(name, {
            first_image = FIRST, last_image = LAST,
            lastFrameImage = "https://cdn.example.com/other.png",
          }), "lastFrameImage", { "last_image", "conflict", "other.png" })
        end)

        it("names the partner of a lone legacy frame on " .. name, function()
          refuses(params(name, { image = FIRST }), { "last_image", "lastFrameImage" })
          refuses(params(name, { lastFrameImage = LAST }), { "first_image", "image" })
        end)

        it("names the reference list when legacy frames are mixed with it on " .. name, function()
          refuses(params(name, {
            image = FIRST, lastFrameImage = LAST, referenceImages = urls(1),
          }), "referenceImages")
          refuses(params(name, {
            image = FIRST, lastFrameImage = LAST, referenceVideos = urls(1, "video"),
          }), "referenceVideos")
        end)
      else
        it("refuses image as an unknown field on " .. name, function()
          refuses(params(name, { first_image = FIRST, image = FIRST, last_image = LAST }), "image")
        end)

        it("refuses lastFrameImage as an unknown field on " .. name, function()
          refuses(params(name, {
            first_image = FIRST, last_image = LAST, lastFrameImage = LAST,
          }), "lastFrameImage")
        end)
      end
    end)

    it("accepts images and videos together in reference mode", function()
      each_model(function(name)
        accepts(params(name, { referenceImages = urls(1), referenceVideos = urls(1, "video") }))
      end)
    end)
  end)

  --------------------------------------------------------------------------- unknown fields

  describe("unknown fields", function()
    it("refuses reference_images and suggests referenceImages", function()
      refuses(params("videos", { reference_images = urls(1) }), "reference_images",
        "referenceImages")
    end)

    it("refuses other typos, naming them", function()
      refuses(params("videos", { firstImage = FIRST, last_image = LAST }), "firstImage")
      refuses(params("videos", { aspect_ratio = "16:9" }), "aspect_ratio")
      refuses(params("videos", { Duration = 5 }), "Duration")
      refuses(params("starvideos_o3", { seed = 42 }), "seed")
    end)

    it("refuses an unknown field on every model", function()
      each_model(function(name)
        refuses(params(name, { negative_prompt = "blurry" }), "negative_prompt")
      end)
    end)

    it("refuses a positional (non-string) key", function()
      local p = params("videos")
      p[1] = "stray"
      local ok, err = starvideos.validate(p)
      assert.is_nil(ok)
      assert.are.equal("invalid_request", err.kind)
      assert.is_string(err.field)
    end)
  end)

  --------------------------------------------------------------------------- extra

  describe("extra", function()
    it("passes unknown API additions through unchecked", function()
      each_model(function(name)
        accepts(params(name, {
          extra = {
            seed = 1.5,
            negative_prompt = "blurry",
            callback_url = "ftp://whatever",
            nested = { a = { 1, 2, 3 }, b = false },
          },
        }))
      end)
    end)

    it("accepts an empty extra table", function()
      accepts(params("videos", { extra = {} }))
    end)

    it("refuses extra that is not a table", function()
      refuses(params("videos", { extra = "seed=1" }), "extra", { "string", "seed=1" })
      refuses(params("videos", { extra = 42 }), "extra", { "number", "42" })
      refuses(params("videos", { extra = true }), "extra", { "boolean", "true" })
    end)

    -- extra is checked once, in C, on the JSON text that is sent: the messages
    -- a user sees for each kind of bad extra, word for word
    local function refused_with(extra, field, message)
      local ok, err = starvideos.validate(params("videos", { extra = extra }))
      assert.is_nil(ok)
      assert.are.equal("invalid_request", err.kind)
      assert.are.equal(field, err.field)
      assert.are.equal(message, err.message)
    end

    it("names what a non-table extra was", function()
      local want = "extra: expected a table of field names to values, got "
      refused_with("seed=1", "extra", want .. 'a string "seed=1"')
      refused_with(42, "extra", want .. "the number 42")
      refused_with(true, "extra", want .. "true")
      refused_with({ 1, 2 }, "extra", want .. "a list [1,2]")
      refused_with(print, "extra", "extra: cannot be sent as JSON: Cannot serialise function: type not supported")
    end)

    it("names a key of extra that is not a name", function()
      local want = "extra: expected a table of field names to values, got a key that is not a name "
      refused_with({ [""] = 1 }, "extra", want .. '("")')
      refused_with({ "a", seed = 1 }, "extra", want .. '("1")')
    end)

    it("names a checked field given in extra", function()
      refused_with({ seed = 1, duration = 5 }, "extra.duration",
        "extra.duration: duration is a checked field; set it at the top level, not in extra")
      refused_with({ extra = {} }, "extra.extra",
        "extra.extra: extra is a checked field; set it at the top level, not in extra")
    end)

    it("names a key that extra gives twice (a number key and its string)", function()
      refused_with({ [1.5] = "a", ["1.5"] = "b" }, "extra", 'extra: the key "1.5" is given twice')
    end)

    it("sends extra's members as they are, beside the checked fields", function()
      local p = params("videos", { extra = { seed = 7, tags = { "a" } } })
      local path, body = core.build_create(p, assert(Create.extra_json(p)))
      assert.is_string(path)
      local sent = cjson.decode(body)
      assert.are.equal(7, sent.seed)
      assert.are.same({ "a" }, sent.tags)
      assert.is_nil(sent.extra)
    end)

    for _, known in ipairs(KNOWN_FIELDS) do
      it("refuses an extra key that shadows the known field " .. known, function()
        local err = refuses(params("videos", { extra = { [known] = "x" } }),
          { "extra", "extra." .. known, 'extra["' .. known .. '"]', "extra[" .. known .. "]" },
          known)
        assert.is_truthy(err)
      end)
    end
  end)
end)

---------------------------------------------------------------------------- client:create

describe("client:create", function()
  local events, client

  before_each(function()
    events = {}
    client = starvideos.new {
      api_key = "k",
      base_url = "http://127.0.0.1:9",
      max_retries = 0,
      timeout = 5,
      connect_timeout = 2,
      sleep = function() end,
      on_event = function(ev) events[#events + 1] = ev end,
    }
  end)

  local BAD = {
    { "a missing prompt", params("videos", { prompt = NONE }), "prompt" },
    { "an out-of-range duration", params("videos", { duration = 60 }), "duration" },
    { "an unknown model", params("sora", { duration = 5 }), "model" },
    { "an unknown field", params("videos", { reference_images = urls(1) }), "reference_images" },
    { "a ratio the model lacks", params("videos_fast", { ratio = "21:9" }), "ratio" },
    { "too many images", params("videos", { referenceImages = urls(10) }), "referenceImages" },
    { "a file path as a reference", params("videos", { referenceImages = { "./cat.png" } }),
      "referenceImages[1]" },
    { "a lone first_image", params("starvideos_o3", { first_image = FIRST }), "last_image" },
    { "resolution on starvideos_o3", params("starvideos_o3", { resolution = "720p" }),
      "resolution" },
    { "a prompt that is not UTF-8", params("videos", { prompt = "\255\254" }), "prompt" },
  }

  for _, case in ipairs(BAD) do
    it("refuses " .. case[1] .. " without touching the network", function()
      local task, err = client:create(case[2])
      assert.is_nil(task)
      assert.is_table(err)
      assert.are.equal("invalid_request", err.kind, "got " .. tostring(err.message))
      assert.are.equal(case[3], err.field)
      assert.is_nil(err.status)
      assert.are.equal(0, #events, "no event should be emitted: " .. show(events))
    end)
  end

  it("raises when params is not a table", function()
    assert.has_error(function() client:create("videos") end)
    assert.has_error(function() client:create() end)
  end)

  it("does reach the network for a valid request (control for the cases above)", function()
    local task, err = client:create(params("videos"))
    assert.is_nil(task)
    assert.is_table(err)
    assert.are.equal("network", err.kind, "got " .. tostring(err.kind) .. ": "
      .. tostring(err.message))
  end)
end)
