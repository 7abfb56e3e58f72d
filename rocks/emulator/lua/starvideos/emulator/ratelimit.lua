-- The emulator's rate limit on the API (config rate_limit = {count =, per =}: at most count requests of
-- /v1/ in each window of per seconds, the window starting at its first request) and the headers that
-- tell it (config rate_limit_headers): "ietf" (RateLimit / RateLimit-Policy, draft 08 on), "ietf07" (draft
-- 07's dictionary), "x" (x-ratelimit-limit|remaining|reset), "x-requests" (the same, -requests, the reset a
-- duration), "none".  A request past the count is answered 429 with the same headers (no Retry-After).

local R = {}

R.FAMILIES = { ietf = true, ietf07 = true, x = true, ["x-requests"] = true, none = true }

local function int(v) return type(v) == "number" and v == math.floor(v) end

-- The config fields' checks: value -> ok, what was expected.
function R.check_limit(v, null)
  if v == null then return true end
  local ok = type(v) == "table" and int(v.count) and v.count >= 1 and type(v.per) == "number" and v.per > 0
  for k in pairs(type(v) == "table" and v or {}) do if k ~= "count" and k ~= "per" then ok = false end end
  return ok, "null or {\"count\": N >= 1, \"per\": seconds > 0}"
end

function R.check_family(v)
  return R.FAMILIES[v] == true, "\"ietf\", \"ietf07\", \"x\", \"x-requests\" or \"none\""
end

-- The headers of family saying limit, remaining and reset (s) in a window of per s.
local function headers(family, limit, remaining, reset, per)
  if family == "ietf" then
    return { RateLimit = string.format('"default";r=%d;t=%d', remaining, reset),
      ["RateLimit-Policy"] = string.format('"default";q=%d;w=%g', limit, per) }
  elseif family == "ietf07" then
    return { RateLimit = string.format("limit=%d, remaining=%d, reset=%d", limit, remaining, reset) }
  elseif family == "x" then
    return { ["x-ratelimit-limit"] = tostring(limit), ["x-ratelimit-remaining"] = tostring(remaining),
      ["x-ratelimit-reset"] = tostring(reset) }
  elseif family == "x-requests" then
    return { ["x-ratelimit-limit-requests"] = tostring(limit), ["x-ratelimit-remaining-requests"] = tostring(remaining),
      ["x-ratelimit-reset-requests"] = string.format("%dm%ds", math.floor(reset / 60), reset % 60) }
  end
  return {}
end

-- One API request at now under config (its rate_limit and rate_limit_headers; state: the server's, kept
-- across requests): nil when there is no limit, else over (true: answer 429) and the headers to send.
function R.take(state, config, now, null)
  local lim = config.rate_limit
  if lim == nil or lim == null then return nil end
  if state.lim ~= lim or now >= state.ends then state.lim, state.ends, state.used = lim, now + lim.per, 0 end
  local over = state.used >= lim.count
  if not over then state.used = state.used + 1 end
  local reset = math.ceil(state.ends - now) -- (whole seconds, never under the truth)
  return over, headers(config.rate_limit_headers or "ietf", lim.count, lim.count - state.used, reset, lim.per)
end

return R
