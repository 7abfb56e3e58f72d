-- The one observer: the core's observe point (docs/architecture.md, "Extension points"; the starvideos-observe
-- rock).  Metrics (observe/metrics.lua) and traces (observe/trace.lua) hang on observe/observer.lua, which the core
-- calls at its events as cfg.observe, knowing nothing of what listens.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.observe" -- (a core outside this rock's range refused: rocks/needs.lua)

local M = {}

-- A client's observer (cfg.observe) and its tracer (nil: traces off; the client's close flushes it): metrics,
-- whether it counts; s, otel.lua's trace settings (nil: off); nginx_loop, inside nginx the function making the
-- exports' loop of their own (nginx_loop(cfg): on nginx's sockets, client.lua's).
function M.new(cfg, key, loop, metrics, s, nginx_loop)
  local tracer = s and require("starvideos.observe.trace").of(key, cfg, s, loop, nginx_loop) or nil
  local registry = metrics and require("starvideos.observe.metrics").registry() or nil
  return require("starvideos.observe.observer").new(registry, tracer), tracer
end

-- The process's metrics (inside nginx, with the dict, the host's) in Prometheus's text format; spend: the client's
-- client:spend() list, its limits' gauges (nil: none).
function M.text(spend) return require("starvideos.observe.metrics").registry():text(spend) end

return M
