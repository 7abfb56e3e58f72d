-- Made by `make release` (tools/versioned.lua) from starvideos-s3-scm-1.rockspec: change that one, not this one.
-- One repository, several rocks (CONTRACT.md "Rocks"; docs/architecture.md "Extension points"): this one
-- at the top of a checkout, after the starvideos rock:
--   luarocks make rocks/s3/starvideos-s3-0.4.0-1.rockspec
-- Its modules live in rocks/s3/lua/, never in lua/ (the starvideos rock's): LuaRocks' builtin backend
-- copies a top-level lua/ folder into every rock it builds, so this rock is built by a command (its C module) and build.install,
-- and build.install names each of its files (tools/shape.lua checks the list against the folder).
-- It lives in rocks/s3/, with the rock's code and specs, so that a plain `luarocks make` at the top still finds
-- one rock to build (the core's, in rockspec/).
rockspec_format = "3.0"
package = "starvideos-s3"
version = "0.4.0-1"
-- Where the source lives: the archive `make release` writes beside this rockspec (starvideos-0.4.0.tar.gz, the files
-- the rocks build from, under starvideos-0.4.0/), which each source rock of the release carries.
source = {
  url = "starvideos-0.4.0.tar.gz",
  dir = "starvideos-0.4.0",
}
description = {
  summary = "s3:// outs and local files as references for the starvideos client",
  detailed = [[
The bucket sink of the starvideos client: out = "s3://bucket/key" streams a video
into any store that speaks S3's API (multipart, resumable, each part checked), and
{file = path} references are uploaded there; the C module starvideos.sigv4 signs
the requests (AWS Signature Version 4, on libcrypto) and sums each part.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.6",
  -- the core it is written against: its modules listed in docs/architecture.md ("What a rock may require of the
  -- core"), in the release's minor version: LuaRocks refuses a core outside it
  "starvideos >= 0.4, < 0.5",
}
-- libcrypto (OpenSSL; Debian: libssl-dev): CRYPTO_DIR, CRYPTO_INCDIR or CRYPTO_LIBDIR elsewhere.
external_dependencies = {
  CRYPTO = { library = "crypto" },
}
build = {
  type = "command",
  -- starvideos.sigv4 from rocks/s3/rock.mk's SIGV4_MOD_SRC (spec/hosts/build_spec.lua), into build/rock/: of the
  -- core the files it uses, each function in a section of its own so that the linker keeps only those it calls
  build_command = "mkdir -p build/rock && $(CC) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
    .. " -ffunction-sections -fdata-sections -Wl,--gc-sections"
    .. " -I$(LUA_INCDIR) -I$(CRYPTO_INCDIR) $(LIBFLAG) -o build/rock/sigv4.so"
    .. " csrc/core/buf.c csrc/core/error.c csrc/core/text.c csrc/core/media.c csrc/core/stream.c"
    .. " csrc/lua/error.c csrc/lua/stream.c rocks/s3/csrc/sigv4.c rocks/s3/csrc/parts.c rocks/s3/csrc/lua.c"
    .. " -L$(CRYPTO_LIBDIR) -lcrypto -lpthread -ldl -lm",
  install = {
    lib = { ["starvideos.sigv4"] = "build/rock/sigv4.so" },
    lua = {
      ["starvideos.needs.s3"] = "rocks/s3/lua/starvideos/needs/s3.lua", -- (rocks/needs.lua: the core's version checked)
      ["starvideos.references"] = "rocks/s3/lua/starvideos/references/init.lua",
      ["starvideos.sink.s3"] = "rocks/s3/lua/starvideos/sink/s3.lua",
      ["starvideos.storage.commit"] = "rocks/s3/lua/starvideos/storage/commit.lua",
      ["starvideos.storage.object"] = "rocks/s3/lua/starvideos/storage/object.lua",
      ["starvideos.storage.part"] = "rocks/s3/lua/starvideos/storage/part.lua",
      ["starvideos.storage.refs"] = "rocks/s3/lua/starvideos/storage/refs.lua",
      ["starvideos.storage.s3"] = "rocks/s3/lua/starvideos/storage/s3.lua",
      ["starvideos.storage.sweep"] = "rocks/s3/lua/starvideos/storage/sweep.lua",
    },
  },
  copy_directories = {},
}
