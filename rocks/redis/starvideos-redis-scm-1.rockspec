-- One repository, several rocks (CONTRACT.md "Rocks"; docs/architecture.md "Extension points"): this one
-- at the top of a checkout, after the starvideos rock:
--   luarocks make rocks/redis/starvideos-redis-scm-1.rockspec
-- Its modules live in rocks/redis/lua/, never in lua/ (the starvideos rock's): LuaRocks' builtin backend
-- copies a top-level lua/ folder into every rock it builds, so this rock is built by a command (its C module) and build.install,
-- and build.install names each of its files (tools/shape.lua checks the list against the folder).
-- It lives in rocks/redis/, with the rock's code and specs, so that a plain `luarocks make` at the top still finds
-- one rock to build (the core's, in rockspec/).
rockspec_format = "3.0"
package = "starvideos-redis"
version = "scm-1"
-- the same source as rockspec/starvideos-scm-1.rockspec (see there)
source = {
  url = "git+file://.",
  branch = "main",
}
description = {
  summary = "The starvideos fleet on Redis: store = \"redis://...\", its ledger, budget and leases",
  detailed = [[
The fleet on Redis for the starvideos client: store = "redis://..." (and rediss://,
unix://, +sentinel, +cluster), its ledger, shared budget and leases, and the
`starvideos store` command whole (check and hold: their usage, flags and report,
starvideos.command.store); the C module starvideos.redis is its connection
(hiredis' protocol reader and writer, TLS on OpenSSL), starvideos.fleet.native reads
a store's URL and a key's Cluster slot.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.6",
  -- the core it is written against: its modules listed in docs/architecture.md ("What a rock may require of the
  -- core"); no upper bound while both are scm, which LuaRocks orders above every numbered version
  "starvideos >= 0.4",
}
-- hiredis' header (<hiredis/hiredis.h>) and library, OpenSSL's; HIREDIS_DIR,
-- HIREDIS_INCDIR or HIREDIS_LIBDIR (OPENSSL_...) on the luarocks command line point
-- at one elsewhere.
external_dependencies = {
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
}
build = {
  type = "command",
  -- starvideos.redis from rocks/redis/rock.mk's REDIS_MOD_SRC, then starvideos.fleet.native (the store URL's grammar
  -- and the Cluster slot, plain C) from its FLEET_MOD_SRC (spec/hosts/build_spec.lua), into build/rock/
  build_command = "mkdir -p build/rock && $(CC) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
    .. " -I$(LUA_INCDIR) -I$(HIREDIS_INCDIR) -I$(OPENSSL_INCDIR) $(LIBFLAG) -o build/rock/redis.so"
    .. " rocks/redis/csrc/redis.c rocks/redis/csrc/sock.c"
    .. " -L$(HIREDIS_LIBDIR) -L$(OPENSSL_LIBDIR) -lhiredis -lssl -lcrypto -lpthread"
    .. " && $(CC) $(CFLAGS) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
    .. " -I$(LUA_INCDIR) $(LIBFLAG) -o build/rock/native.so"
    .. " rocks/redis/csrc/url.c rocks/redis/csrc/native.c",
  install = {
    lib = { ["starvideos.redis"] = "build/rock/redis.so", ["starvideos.fleet.native"] = "build/rock/native.so" },
    lua = {
      ["starvideos.needs.redis"] = "rocks/redis/lua/starvideos/needs/redis.lua", -- (rocks/needs.lua: the core's version checked)
      ["starvideos.command.store"] = "rocks/redis/lua/starvideos/command/store.lua",
      ["starvideos.fleet.acks"] = "rocks/redis/lua/starvideos/fleet/acks.lua",
      ["starvideos.fleet.again"] = "rocks/redis/lua/starvideos/fleet/again.lua",
      ["starvideos.fleet.ask"] = "rocks/redis/lua/starvideos/fleet/ask.lua",
      ["starvideos.fleet.budget"] = "rocks/redis/lua/starvideos/fleet/budget.lua",
      ["starvideos.fleet.check"] = "rocks/redis/lua/starvideos/fleet/check.lua",
      ["starvideos.fleet.cluster"] = "rocks/redis/lua/starvideos/fleet/cluster.lua",
      ["starvideos.fleet.conn"] = "rocks/redis/lua/starvideos/fleet/conn.lua",
      ["starvideos.fleet.declared"] = "rocks/redis/lua/starvideos/fleet/declared.lua",
      ["starvideos.fleet.identity"] = "rocks/redis/lua/starvideos/fleet/identity.lua",
      ["starvideos.fleet.leases"] = "rocks/redis/lua/starvideos/fleet/leases.lua",
      ["starvideos.fleet.ledger"] = "rocks/redis/lua/starvideos/fleet/ledger.lua",
      ["starvideos.fleet.queue"] = "rocks/redis/lua/starvideos/fleet/queue.lua",
      ["starvideos.fleet.route"] = "rocks/redis/lua/starvideos/fleet/route.lua",
      ["starvideos.fleet.scripts"] = "rocks/redis/lua/starvideos/fleet/scripts.lua",
      ["starvideos.fleet.sentinel"] = "rocks/redis/lua/starvideos/fleet/sentinel.lua",
      ["starvideos.fleet.spent"] = "rocks/redis/lua/starvideos/fleet/spent.lua",
      ["starvideos.fleet.reads"] = "rocks/redis/lua/starvideos/fleet/reads.lua",
      ["starvideos.fleet.refusals"] = "rocks/redis/lua/starvideos/fleet/refusals.lua",
      ["starvideos.fleet.queued"] = "rocks/redis/lua/starvideos/fleet/queued.lua",
      ["starvideos.fleet.events"] = "rocks/redis/lua/starvideos/fleet/events.lua",
      ["starvideos.fleet.store"] = "rocks/redis/lua/starvideos/fleet/store.lua",
      ["starvideos.fleet.url"] = "rocks/redis/lua/starvideos/fleet/url.lua",
      ["starvideos.ledger.redis"] = "rocks/redis/lua/starvideos/ledger/redis.lua",
      ["starvideos.ledger.rediss"] = "rocks/redis/lua/starvideos/ledger/rediss.lua",
      ["starvideos.ledger.unix"] = "rocks/redis/lua/starvideos/ledger/unix.lua",
    },
  },
  copy_directories = {},
}
