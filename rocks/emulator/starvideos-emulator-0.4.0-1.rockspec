-- Made by `make release` (tools/versioned.lua) from starvideos-emulator-scm-1.rockspec: change that one, not this one.
-- One repository, several rocks (CONTRACT.md "Rocks"; docs/architecture.md "Extension points"): this one
-- at the top of a checkout, after the starvideos rock:
--   luarocks make rocks/emulator/starvideos-emulator-0.4.0-1.rockspec
-- Its modules live in rocks/emulator/lua/, never in lua/ (the starvideos rock's): LuaRocks' builtin backend
-- copies a top-level lua/ folder into every rock it builds, so this rock is built by build.install alone (no C),
-- and build.install names each of its files (tools/shape.lua checks the list against the folder).
-- It lives in rocks/emulator/, with the rock's code and specs, so that a plain `luarocks make` at the top still finds
-- one rock to build (the core's, in rockspec/).
rockspec_format = "3.0"
package = "starvideos-emulator"
version = "0.4.0-1"
-- Where the source lives: the archive `make release` writes beside this rockspec (starvideos-0.4.0.tar.gz, the files
-- the rocks build from, under starvideos-0.4.0/), which each source rock of the release carries.
source = {
  url = "starvideos-0.4.0.tar.gz",
  dir = "starvideos-0.4.0",
}
description = {
  summary = "A local emulator of the StarVideos API: `starvideos emulator`",
  detailed = [[
The `starvideos emulator` command: a local server that speaks the StarVideos API
(tasks, queues, faults, real MP4 videos) for tests and demos, on LuaSocket.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.6",
  -- the core it is written against: its modules listed in docs/architecture.md ("What a rock may require of the
  -- core"), in the release's minor version: LuaRocks refuses a core outside it
  "starvideos >= 0.4, < 0.5",
  "luasocket",
  "argparse >= 0.7", -- (its command line: emulator/args.lua)
}
build = {
  type = "none",
  install = {
    lua = {
      ["starvideos.needs.emulator"] = "rocks/emulator/lua/starvideos/needs/emulator.lua", -- (rocks/needs.lua: the core's version checked)
      ["starvideos.command.emulator"] = "rocks/emulator/lua/starvideos/command/emulator.lua",
      ["starvideos.emulator.args"] = "rocks/emulator/lua/starvideos/emulator/args.lua",
      ["starvideos.emulator.bytes"] = "rocks/emulator/lua/starvideos/emulator/bytes.lua",
      ["starvideos.emulator.fail"] = "rocks/emulator/lua/starvideos/emulator/fail.lua",
      ["starvideos.emulator.files"] = "rocks/emulator/lua/starvideos/emulator/files.lua",
      ["starvideos.emulator.h264"] = "rocks/emulator/lua/starvideos/emulator/h264.lua",
      ["starvideos.emulator"] = "rocks/emulator/lua/starvideos/emulator/init.lua",
      ["starvideos.emulator.media"] = "rocks/emulator/lua/starvideos/emulator/media.lua",
      ["starvideos.emulator.mp4"] = "rocks/emulator/lua/starvideos/emulator/mp4.lua",
      ["starvideos.emulator.ratelimit"] = "rocks/emulator/lua/starvideos/emulator/ratelimit.lua",
      ["starvideos.emulator.scene"] = "rocks/emulator/lua/starvideos/emulator/scene.lua",
    },
  },
  copy_directories = {},
}
