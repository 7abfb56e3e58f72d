-- One repository, several rocks (CONTRACT.md "Rocks"; docs/architecture.md "Extension points"): this one
-- at the top of a checkout, after the starvideos rock:
--   luarocks make rocks/observe/starvideos-observe-scm-1.rockspec
-- Its modules live in rocks/observe/lua/, never in lua/ (the starvideos rock's): LuaRocks' builtin backend
-- copies a top-level lua/ folder into every rock it builds, so this rock is built by build.install alone (no C),
-- and build.install names each of its files (tools/shape.lua checks the list against the folder).
-- It lives in rocks/observe/, with the rock's code and specs, so that a plain `luarocks make` at the top still finds
-- one rock to build (the core's, in rockspec/).
rockspec_format = "3.0"
package = "starvideos-observe"
version = "scm-1"
-- the same source as rockspec/starvideos-scm-1.rockspec (see there)
source = {
  url = "git+file://.",
  branch = "main",
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
  -- core"); no upper bound while both are scm, which LuaRocks orders above every numbered version
  "starvideos >= 0.4",
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
