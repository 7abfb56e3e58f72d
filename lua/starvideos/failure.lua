-- Why a task failed or a create was refused: the service's words matched against a table of the texts seen
-- (data, docs/failures.md), the user's own (`failure_patterns` on `new`) tried first.  One of REASONS, "unknown"
-- where nothing matches: never a guess.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local type, ipairs, pairs, tostring, pcall = type, ipairs, pairs, tostring, pcall

local M = {}

-- policy: the service refused the content; input: a parameter or reference it could not use; service: its own
-- failure (may pass if tried again); unknown: no pattern matched.
M.REASONS = { policy = true, input = true, service = true, unknown = true }

-- The fields a policy refusal may name (err.input).
M.INPUTS = { prompt = true, first_image = true, last_image = true, referenceImages = true, referenceVideos = true,
  referenceAudios = true }

-- The texts seen, each {match = a Lua pattern of the lower-cased text, reason = R, input = the field it names}, the
-- first that matches wins: the docs' own (api/), then the emulator's (rocks/emulator: emulator/fail.lua's TEXTS, the
-- kind of words the service writes).  docs/failures.md lists them (spec/failure_spec.lua checks the two agree).
M.PATTERNS = {
  { match = "the prompt was %a+ by content moderation", reason = "policy", input = "prompt" },
  { match = "first frame image was %a+ by content moderation", reason = "policy", input = "first_image" },
  { match = "last frame image was %a+ by content moderation", reason = "policy", input = "last_image" },
  { match = "reference image was %a+ by content moderation", reason = "policy", input = "referenceImages" },
  { match = "reference video was %a+ by content moderation", reason = "policy", input = "referenceVideos" },
  { match = "reference audio was %a+ by content moderation", reason = "policy", input = "referenceAudios" },
  { match = "content moderation", reason = "policy" },
  { match = "violates platform polic", reason = "policy" }, -- (the docs' own words for what a prompt must avoid)
  { match = "reference image resolution is too low", reason = "input", input = "referenceImages" }, -- (api/ 002)
  { match = "first frame image resolution is too low", reason = "input", input = "first_image" },
  { match = "last frame image resolution is too low", reason = "input", input = "last_image" },
  { match = "reference video duration exceeds the limit", reason = "input", input = "referenceVideos" },
  { match = "reference audio could not be decoded", reason = "input", input = "referenceAudios" },
  { match = "reference media could not be fetched", reason = "input" },
  { match = "invalid parameter", reason = "input" },
  { match = "internal error", reason = "service" },
  { match = "temporarily unavailable", reason = "service" },
}

local FIELDS = { match = true, reason = true, input = true }

-- check(v) -> nil, or why `failure_patterns` (a list of {match = LUA_PATTERN, reason = R[, input = FIELD]}) is wrong
-- (config.lua's option checker: the second result says the words are whole).
function M.check(v)
  if type(v) ~= "table" then
    return "failure_patterns: a list of {match =, reason =} expected, got " .. type(v), true
  end
  for i, p in ipairs(v) do
    local at = "failure_patterns[" .. i .. "]"
    if type(p) ~= "table" then return at .. ": a table {match =, reason =} expected, got " .. type(p), true end
    for k in pairs(p) do
      if not FIELDS[k] then return at .. ": unknown field '" .. tostring(k) .. "' (match, reason, input)", true end
    end
    if type(p.match) ~= "string" or not pcall(string.find, "", p.match) then
      return at .. ".match: a Lua pattern expected, got " .. (type(p.match) == "string" and "a malformed one: "
        .. string.format("%q", p.match) or type(p.match)), true
    end
    if not M.REASONS[p.reason] then
      return at .. ".reason: policy, input, service or unknown expected, got " .. tostring(p.reason), true
    end
    if p.input ~= nil and not M.INPUTS[p.input] then
      return at .. ".input: prompt, first_image, last_image, referenceImages, referenceVideos or referenceAudios "
        .. "expected, got " .. tostring(p.input), true
    end
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return "failure_patterns: a list expected (keys 1 to n), got other keys", true end
end

-- check_fallback(v, show) -> nil, or why `fallback` (the models tried in turn after a final service or unknown
-- failure: fallback.lua) is wrong, as check's (show: how config.lua shows a value).
function M.check_fallback(v, show)
  if type(v) ~= "table" or #v == 0 then return "a list of model names" end
  for i, m in pairs(v) do
    if type(i) ~= "number" or type(m) ~= "string" or not require("starvideos.core").models[m] then
      return string.format("a list of model names (fallback[%s]: %s is no model)", tostring(i), show(m)), true
    end
  end
end

local function first(list, text)
  for _, p in ipairs(list or {}) do
    if text:find(p.match) then return p.reason, p.input end
  end
end

-- classify(text, extra) -> reason, input (the field named, or nil): the user's patterns (extra) tried first, on
-- the text as it came, then the library's on it lower-cased.
function M.classify(text, extra)
  if type(text) ~= "string" then return "unknown" end
  local reason, input = first(extra, text)
  if reason then return reason, input end
  reason, input = first(M.PATTERNS, text:lower())
  return reason or "unknown", input
end

-- err with its reason (and input) set from its task's words (task_failed) or its message (a refused create's: the
-- server's words after the core's "create: HTTP 400: "), patterns the user's.
function M.explain(err, extra)
  if type(err) ~= "table" or err.reason then return err end
  local words = err.task and err.task.error
  if words == nil then words = type(err.message) == "string" and (err.message:match("^%a+: HTTP %d+: (.*)$")
    or err.message) end
  if type(words) == "table" then words = words.message or words.code end
  err.reason, err.input = M.classify(words ~= nil and tostring(words) or nil, extra)
  return err
end

-- A create the service refused (an HTTP answer, 4xx or 5xx, that made no task: req.err) explained; another error
-- (the network's, a timeout, a local refusal) as it is: nothing the service said about the content.
function M.refused(err, extra)
  local status = type(err) == "table" and err.status
  if type(status) ~= "number" or status < 400 or status == 401 or status == 403 or status == 404 or status == 429
    or status == 407 or status == 408 then return err end
  return M.explain(err, extra)
end

-- What to do for a reason (the command line's line, the studio's card): named, the input its words named as the
-- reader knows it (the field, or the command line's flag), or nil; tried: how many models a fallback tried, each
-- failed (nil: one, or no fallback).
function M.advice(reason, named, tried)
  if named == "prompt" then named = "the prompt" end
  if reason == "policy" then
    return "the service refused the content: change " .. (named or "the prompt or the reference")
  elseif reason == "input" then
    return "the service could not use a parameter or reference: change " .. (named or "the one its words name")
  elseif reason == "service" and tried then
    return "the service's own failure, on each of the " .. tried .. " models tried: try again later"
  elseif reason == "service" then
    return "the service's own failure: try again, or another model (--fallback)"
  end
  return "the service's words match no known failure: read them above"
    .. (tried and " (each of the " .. tried .. " models tried failed)" or "")
end

return M
