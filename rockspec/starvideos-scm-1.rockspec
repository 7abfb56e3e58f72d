-- The development version: `luarocks make` at the top of a checkout (with no
-- argument it picks this file, "scm" being newer than any numbered version)
-- builds and installs the working tree as it is (Lua 5.1 to 5.4, LuaJIT).
rockspec_format = "3.0"
package = "starvideos"
version = "scm-1"
-- Where the source lives: this repository, its main branch.  `luarocks make`
-- builds the checkout it runs in and fetches nothing, so url is not used there;
-- the project has no public address yet, so it names the checkout itself.
-- Publishing means setting url to the repository's git address
-- ("git+https://<host>/<owner>/starvideos.git"), which `luarocks build` clones.
source = {
  url = "git+file://.",
  branch = "main",
}
description = {
  summary = "Client for the StarVideos asynchronous video-generation API",
  detailed = [[
A C core on libcurl validates requests against each model's rules and does the
HTTP; pure-Lua helpers download, generate, wait for many tasks at once, keep a
journal of paid tasks and run non-blocking jobs. The fleet on Redis, s3:// outs,
metrics and traces and the local emulator are rocks of their own (starvideos-redis,
starvideos-s3, starvideos-observe, starvideos-emulator: rocks/<name>/).
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.6",
  "lua-cjson >= 2.1",
  -- (no argparse: the command line reads its line, writes its help and its completion itself, cli/parser.lua and
  -- cli/complete.lua, so a tree of this rock holds nothing the library does not need: docs/install.md)
}
-- libcurl's library only: the compiler finds curl/curl.h where the system keeps
-- it (Debian and Ubuntu: /usr/include/<multiarch>/curl, which a `header` check
-- here would miss).  CURL_DIR, CURL_INCDIR or CURL_LIBDIR on the luarocks
-- command line point at a libcurl elsewhere.  libcurl 7.68 or newer.
-- libcrypto (OpenSSL; Debian: libssl-dev) for starvideos.sign's webhook
-- signatures (HMAC-SHA256, base64): CRYPTO_DIR, CRYPTO_INCDIR or CRYPTO_LIBDIR the same way.
external_dependencies = {
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    -- the core without libcurl or libcrypto (quick to require), libcurl's transport
    -- and the webhook signatures (libcrypto, loaded on first use) apart; the sources
    -- are mk/sources.mk's CORE_MOD_SRC, CURL_MOD_SRC and SIGN_MOD_SRC (spec/hosts/build_spec.lua)
    ["starvideos.core"] = {
      sources = { "csrc/core/buf.c", "csrc/core/error.c", "csrc/core/text.c", "csrc/core/url.c",
        "csrc/core/clock.c", "csrc/core/id.c", "csrc/core/json.c", "csrc/core/models.c", "csrc/core/answer.c",
        "csrc/core/verdict.c", "csrc/core/limits.c", "csrc/core/journal.c", "csrc/core/part.c", "csrc/core/media.c", "csrc/core/work.c", "csrc/lua/error.c", "csrc/lua/verdict.c", "csrc/lua/part.c",
        "csrc/lua/work.c", "csrc/lua/core.c", "csrc/lua/commit.c", "csrc/lua/run.c", "csrc/lua/lock.c", "csrc/lua/media.c" },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      libraries = { "pthread", "dl", "m" },
      -- curl/curlver.h only (the version for the User-Agent): no libcurl linked
      incdirs = { "$(CURL_INCDIR)" },
    },
    ["starvideos.sign"] = {
      sources = { "csrc/core/buf.c", "csrc/core/error.c", "csrc/core/text.c", "csrc/core/url.c",
        "csrc/core/clock.c", "csrc/core/id.c", "csrc/core/json.c", "csrc/core/models.c", "csrc/core/answer.c",
        "csrc/core/verdict.c", "csrc/core/limits.c", "csrc/core/journal.c", "csrc/core/part.c", "csrc/core/media.c", "csrc/core/work.c", "csrc/core/sign.c", "csrc/core/stream.c",
        "csrc/lua/error.c", "csrc/lua/verdict.c",
        "csrc/lua/part.c", "csrc/lua/work.c", "csrc/lua/sign.c", "csrc/lua/stream.c" },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      libraries = { "crypto", "pthread", "dl", "m" },
      incdirs = { "$(CRYPTO_INCDIR)" },
      libdirs = { "$(CRYPTO_LIBDIR)" },
    },
    ["starvideos.curl"] = {
      sources = { "csrc/core/buf.c", "csrc/core/error.c", "csrc/core/text.c", "csrc/core/url.c",
        "csrc/core/clock.c", "csrc/core/id.c", "csrc/core/json.c", "csrc/core/models.c", "csrc/core/answer.c",
        "csrc/core/verdict.c", "csrc/core/limits.c", "csrc/core/journal.c", "csrc/core/part.c", "csrc/core/media.c", "csrc/core/work.c", "csrc/curl/multi.c", "csrc/curl/send.c", "csrc/curl/body.c",
        "csrc/lua/error.c", "csrc/lua/verdict.c", "csrc/lua/part.c", "csrc/lua/work.c", "csrc/lua/curl.c" },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      libraries = { "curl", "pthread", "dl", "m" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["starvideos"] = "lua/starvideos/init.lua",
    ["starvideos.bucket"] = "lua/starvideos/bucket.lua",
    ["starvideos.key"] = "lua/starvideos/key.lua",
    ["starvideos.lineage"] = "lua/starvideos/lineage.lua",
    ["starvideos.verb_job"] = "lua/starvideos/verb_job.lua",
    ["starvideos.cli"] = "lua/starvideos/cli/init.lua",
    ["starvideos.cli.args"] = "lua/starvideos/cli/args.lua",
    ["starvideos.cli.parser"] = "lua/starvideos/cli/parser.lua",
    ["starvideos.cli.complete"] = "lua/starvideos/cli/complete.lua",
    ["starvideos.cli.client"] = "lua/starvideos/cli/client.lua",
    ["starvideos.cli.commands"] = "lua/starvideos/cli/commands.lua",
    ["starvideos.cli.batch"] = "lua/starvideos/cli/batch.lua",
    ["starvideos.cli.display"] = "lua/starvideos/cli/display.lua",
    ["starvideos.cli.input"] = "lua/starvideos/cli/input.lua",
    ["starvideos.cli.json"] = "lua/starvideos/cli/json.lua",
    ["starvideos.cli.output"] = "lua/starvideos/cli/output.lua",
    ["starvideos.cli.lineage"] = "lua/starvideos/cli/lineage.lua",
    ["starvideos.cli.verify"] = "lua/starvideos/cli/verify.lua",
    ["starvideos.cli.plan"] = "lua/starvideos/cli/plan.lua",
    ["starvideos.cli.spend"] = "lua/starvideos/cli/spend.lua",
    ["starvideos.client"] = "lua/starvideos/client.lua",
    ["starvideos.client_ledger"] = "lua/starvideos/client_ledger.lua",
    ["starvideos.config"] = "lua/starvideos/config.lua",
    ["starvideos.create"] = "lua/starvideos/create.lua",
    ["starvideos.batch"] = "lua/starvideos/batch.lua",
    ["starvideos.download"] = "lua/starvideos/download.lua",
    ["starvideos.errors"] = "lua/starvideos/errors.lua",
    ["starvideos.failure"] = "lua/starvideos/failure.lua",
    ["starvideos.fallback"] = "lua/starvideos/fallback.lua",
    ["starvideos.refusal"] = "lua/starvideos/refusal.lua",
    ["starvideos.jcs"] = "lua/starvideos/jcs.lua",
    ["starvideos.mark"] = "lua/starvideos/mark.lua",
    ["starvideos.signer"] = "lua/starvideos/signer.lua",
    ["starvideos.extras.keep"] = "lua/starvideos/extras/keep.lua",
    ["starvideos.extras.log"] = "lua/starvideos/extras/log.lua",
    ["starvideos.extras.notify"] = "lua/starvideos/extras/notify.lua",
    ["starvideos.extras.preflight"] = "lua/starvideos/extras/preflight.lua",
    ["starvideos.job"] = "lua/starvideos/job.lua",
    ["starvideos.lease"] = "lua/starvideos/lease.lua",
    ["starvideos.ledger"] = "lua/starvideos/ledger.lua",
    ["starvideos.lists"] = "lua/starvideos/lists.lua",
    ["starvideos.local_files"] = "lua/starvideos/local_files.lua",
    ["starvideos.loop"] = "lua/starvideos/loop.lua",
    ["starvideos.observed"] = "lua/starvideos/observed.lua",
    ["starvideos.otel"] = "lua/starvideos/otel.lua",
    ["starvideos.placement"] = "lua/starvideos/placement.lua",
    ["starvideos.censored"] = "lua/starvideos/censored.lua",
    ["starvideos.nginx.answer"] = "lua/starvideos/nginx/answer.lua",
    ["starvideos.nginx.body"] = "lua/starvideos/nginx/body.lua",
    ["starvideos.nginx.budget"] = "lua/starvideos/nginx/budget.lua",
    ["starvideos.nginx.transport"] = "lua/starvideos/nginx/transport.lua",
    ["starvideos.nginx.wire"] = "lua/starvideos/nginx/wire.lua",
    ["starvideos.records.compact"] = "lua/starvideos/records/compact.lua",
    ["starvideos.records.journal"] = "lua/starvideos/records/journal.lua",
    ["starvideos.records.events"] = "lua/starvideos/records/events.lua",
    ["starvideos.records.leases"] = "lua/starvideos/records/leases.lua",
    ["starvideos.records.ledger"] = "lua/starvideos/records/ledger.lua",
    ["starvideos.records.reads"] = "lua/starvideos/records/reads.lua",
    ["starvideos.records.refusals"] = "lua/starvideos/records/refusals.lua",
    ["starvideos.records.samples"] = "lua/starvideos/records/samples.lua",
    ["starvideos.records.said"] = "lua/starvideos/records/said.lua",
    ["starvideos.request"] = "lua/starvideos/request.lua",
    ["starvideos.schedule"] = "lua/starvideos/schedule.lua",
    ["starvideos.seat"] = "lua/starvideos/seat.lua",
    ["starvideos.host"] = "lua/starvideos/host.lua",
    ["starvideos.shell"] = "lua/starvideos/shell.lua",
    ["starvideos.spend"] = "lua/starvideos/spend.lua",
    ["starvideos.spend_option"] = "lua/starvideos/spend_option.lua",
    ["starvideos.queue"] = "lua/starvideos/queue.lua",
    ["starvideos.submit"] = "lua/starvideos/submit.lua",
    ["starvideos.names"] = "lua/starvideos/names.lua",
    ["starvideos.sse"] = "lua/starvideos/sse.lua",
    ["starvideos.told"] = "lua/starvideos/told.lua",
    ["starvideos.store_option"] = "lua/starvideos/store_option.lua",
    ["starvideos.notify_option"] = "lua/starvideos/notify_option.lua",
    ["starvideos.sink"] = "lua/starvideos/sink.lua",
    ["starvideos.rules"] = "lua/starvideos/rules.lua",
    ["starvideos.interrupt"] = "lua/starvideos/interrupt.lua",
    ["starvideos.cli.progress"] = "lua/starvideos/cli/progress.lua",
    ["starvideos.extension"] = "lua/starvideos/extension.lua",
    ["starvideos.install_hint"] = "lua/starvideos/install_hint.lua",
    ["starvideos.film"] = "lua/starvideos/film.lua",
    ["starvideos.film_join"] = "lua/starvideos/film_join.lua",
    ["starvideos.provenance"] = "lua/starvideos/provenance.lua",
    ["starvideos.video"] = "lua/starvideos/video.lua",
  },
  copy_directories = {},
  install = {
    bin = { starvideos = "bin/starvideos" },
    -- the LuaCATS annotations, in the rock's folder: <rock dir>/conf/types/starvideos.lua
    -- (docs/reference.md#editors); conf, not copy_directories, which would leave out the LICENSE
    conf = { ["types/starvideos.lua"] = "types/starvideos.lua" },
  },
}
test = {
  type = "command",
  command = "make test",
}
