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

-- The texts seen, each {match = a Lua pattern of the lower-cased text, reason = R, input = the field it names}.
M.PATTERNS = {
  { match = "reference image resolution is too low", reason = "input" }, -- (the docs' own, api/ 002)
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

-- err with its reason (and input) set from its task's words (task_failed) or its message, patterns the user's.
function M.explain(err, extra)
  if type(err) ~= "table" or err.reason then return err end
  local words = err.task and err.task.error or err.message
  if type(words) == "table" then words = words.message or words.code end
  err.reason, err.input = M.classify(words ~= nil and tostring(words) or nil, extra)
  return err
end

return M
