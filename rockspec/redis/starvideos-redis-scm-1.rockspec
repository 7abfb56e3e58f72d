-- starvideos.redis, the store's connection (hiredis' protocol reader and writer,
-- TLS on OpenSSL; rocks/redis/lua/starvideos/fleet/store.lua loads it only when a store is
-- used), as a rock of its own: LuaRocks' builtin build cannot make one module of a
-- rock optional, and the starvideos rock must build where hiredis is missing.
-- Where hiredis and OpenSSL are found (Debian: libhiredis-dev libssl-dev), at the
-- top of a checkout, after the starvideos rock:
--   luarocks make rockspec/redis/starvideos-redis-scm-1.rockspec
-- It lives in rockspec/redis/ so that a plain `luarocks make` still finds one
-- rock (rockspec/starvideos-scm-1.rockspec) to build.
rockspec_format = "3.0"
package = "starvideos-redis"
version = "scm-1"
-- the same source as rockspec/starvideos-scm-1.rockspec (see there)
source = {
  url = "git+file://.",
  branch = "main",
}
description = {
  summary = "Non-blocking Redis connection for starvideos' store (hiredis, OpenSSL)",
  detailed = [[
The C module starvideos.redis: a non-blocking Redis connection (TCP, TLS, unix
sockets) that the starvideos store (store = "redis://...") uses outside nginx.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
-- hiredis' header (<hiredis/hiredis.h>) and library, OpenSSL's; HIREDIS_DIR,
-- HIREDIS_INCDIR or HIREDIS_LIBDIR (OPENSSL_...) on the luarocks command line point
-- at one elsewhere.
external_dependencies = {
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
}
build = {
  type = "builtin",
  modules = {
    -- the sources are mk/sources.mk's REDIS_MOD_SRC (spec/build_spec.lua)
    ["starvideos.redis"] = {
      sources = { "csrc/redis/redis.c", "csrc/redis/sock.c" },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      libraries = { "hiredis", "ssl", "crypto", "pthread" },
      incdirs = { "$(HIREDIS_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(HIREDIS_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
  },
}
