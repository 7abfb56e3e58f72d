-- Made by `make release` (tools/versioned.lua) from starvideos-observe-scm-1.rockspec: change that one, not this one.
-- One repository, several rocks (CONTRACT.md "Rocks"; docs/architecture.md "Extension points"): this one
-- at the top of a checkout, after the starvideos rock:
--   luarocks make rocks/observe/starvideos-observe-0.4.0-1.rockspec
-- Its modules live in rocks/observe/lua/, never in lua/ (the starvideos rock's): LuaRocks' builtin backend
-- copies a top-level lua/ folder into every rock it builds, so this rock is built by build.install alone (no C),
-- and build.install names each of its files (tools/shape.lua checks the list against the folder).
-- It lives in rocks/observe/, with the rock's code and specs, so that a plain `luarocks make` at the top still finds
-- one rock to build (the core's, in rockspec/).
rockspec_format = "3.0"
package = "starvideos-observe"
version = "0.4.0-1"
-- Where the source lives: the archive `make release` writes beside this rockspec (starvideos-0.4.0.tar.gz, the files
-- the rocks build from, under starvideos-0.4.0/), which each source rock of the release carries.
source = {
  url = "starvideos-0.4.0.tar.gz",
  dir = "starvideos-0.4.0",
}
description = {
  summary = "Metrics and traces for the starvideos client (pure Lua)",
  detailed = [[
The observer of the starvideos client: metrics = true (client:metrics(), the
Prometheus text) and trace = {...} (OTLP spans over HTTP), hung on the core's one
observer; pure Lua.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.6",
  -- the core it is written against: its modules listed in docs/architecture.md ("What a rock may require of the
  -- core"), in the release's minor version: LuaRocks refuses a core outside it
  "starvideos >= 0.4, < 0.5",
}
build = {
  type = "none",
  install = {
    lua = {
      ["starvideos.needs.observe"] = "rocks/observe/lua/starvideos/needs/observe.lua", -- (rocks/needs.lua: the core's version checked)
      ["starvideos.observe.metrics"] = "rocks/observe/lua/starvideos/observe/metrics.lua",
      ["starvideos.observe.observer"] = "rocks/observe/lua/starvideos/observe/observer.lua",
      ["starvideos.observe.otlp"] = "rocks/observe/lua/starvideos/observe/otlp.lua",
      ["starvideos.observe.trace"] = "rocks/observe/lua/starvideos/observe/trace.lua",
      ["starvideos.observe"] = "rocks/observe/lua/starvideos/observe/init.lua",
    },
  },
  copy_directories = {},
}
