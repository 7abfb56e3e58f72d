-- The nginx lines a fleet's host takes from the manual (rocks/redis/spec/hosts/fleet_spec.lua,
-- queue_nginx_spec.lua): docs/keep-and-fleet.md's block under "## A fleet on Redis" (the shared dict, keep from
-- init_worker's timer), so that the specs run what the manual says.
local helper = require "spec.helper"

local M = {}

-- The block, its client made by `new` (a Lua expression), its keep's lease `lease` s and its look 0.5 s, its videos
-- in `videos`.
function M.fleet_block(new, videos, lease)
  local doc = assert(helper.read_file(helper.root .. "/docs/keep-and-fleet.md"))
  local at = assert(doc:find("\n## A fleet on Redis\n", 1, true), "docs/keep-and-fleet.md has no ## A fleet on Redis")
  local block = assert(doc:match("```nginx\n(.-)\n```", at), "no nginx block under ## A fleet on Redis")
  local n1, n2
  block, n1 = block:gsub('require%("starvideos"%)%.new { store = "redis://127%.0%.0%.1:6379" }',
    (new:gsub("%%", "%%%%")))
  block, n2 = block:gsub('client:keep { dir = "/path/to/videos",[^\n]*\n%s*interval = %d+ }',
    (string.format("client:keep { lease = %d, interval = 0.5, dir = %q }", lease, videos):gsub("%%", "%%%%")))
  assert(n1 == 1 and n2 == 1, "docs/keep-and-fleet.md's fleet block has no require(\"starvideos\").new { store = "
    .. "\"redis://127.0.0.1:6379\" } or client:keep { dir = \"/path/to/videos\", ... interval = N }")
  return block
end

return M
