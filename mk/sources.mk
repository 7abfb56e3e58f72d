# The core's C sources: the one list the Makefile, the fuzz targets (mk/fuzz.mk), the
# static library (mk/static.mk), make check (mk/check.mk) and both rockspecs
# build from.  A rockspec cannot include this file, so spec/hosts/build_spec.lua
# checks that each rockspec's `sources` are the lists below, in this order.
# Each file is compiled once per VM, without a -D that changes what it is.
# The folders are the layers: csrc/core (no Lua, no transport), csrc/curl (the
# libcurl transport), csrc/lua (the Lua binding, a file per object).  A rock's C is in its
# rocks/<rock>/csrc/, its lists in its rocks/<rock>/rock.mk (which the Makefile includes after this
# file; spec/hosts/build_spec.lua checks its rockspec against them as well).

# The core: no Lua, no libcurl (the C tests and the fuzz targets link it alone).
SV_SRC       := csrc/core/buf.c csrc/core/error.c csrc/core/text.c csrc/core/url.c csrc/core/clock.c \
                csrc/core/id.c csrc/core/json.c csrc/core/models.c csrc/core/answer.c csrc/core/verdict.c csrc/core/limits.c \
                csrc/core/journal.c csrc/core/part.c csrc/core/media.c csrc/core/work.c
# libcurl's transport: the multi handle (multi.c), what an exchange sends (send.c) and what comes back (body.c)
SV_HTTP_SRC  := csrc/curl/multi.c csrc/curl/send.c csrc/curl/body.c
# webhook signatures on libcrypto (HMAC-SHA256, base64), and a video's check as it
# passes (stream.c: its SHA-256 and the MP4 check): sign.so only, linked with the
# Makefile's CRYPTO_LIBS (the C tests and the fuzz targets do without it)
SIGN_SRC     := csrc/core/sign.c csrc/core/stream.c
# what the Lua modules share (the error table, the verdict, the .part handle, a helper thread's handle)
LSV_SRC      := csrc/lua/error.c csrc/lua/verdict.c csrc/lua/part.c csrc/lua/work.c
# starvideos.core's own objects: its module functions, the commit, the command runner, the journal's lock and
# writer, the media readers
CORE_LUA_SRC := csrc/lua/core.c csrc/lua/commit.c csrc/lua/run.c csrc/lua/lock.c csrc/lua/media.c
# starvideos.core (core.so: neither libcurl nor libcrypto, so `require "starvideos"`
# is quick), starvideos.curl (curl.so: the transport, loaded with the first client)
# and starvideos.sign (sign.so: the webhook signatures, the one module linking
# libcrypto, loaded on first use by notify and verify_webhook)
CORE_MOD_SRC := $(SV_SRC) $(LSV_SRC) $(CORE_LUA_SRC)
CURL_MOD_SRC := $(SV_SRC) $(SV_HTTP_SRC) $(LSV_SRC) csrc/lua/curl.c
SIGN_MOD_SRC := $(SV_SRC) $(SIGN_SRC) $(LSV_SRC) csrc/lua/sign.c csrc/lua/stream.c
# every C file of the three modules, each compiled once
ALL_SRC      := $(SV_SRC) $(SV_HTTP_SRC) $(SIGN_SRC) $(LSV_SRC) $(CORE_LUA_SRC) csrc/lua/curl.c csrc/lua/sign.c \
                csrc/lua/stream.c
