# The C sources: the one list the Makefile, the fuzz targets (mk/fuzz.mk), the
# static library (mk/static.mk), make check (mk/check.mk) and both rockspecs
# build from.  A rockspec cannot include this file, so spec/hosts/build_spec.lua
# checks that each rockspec's `sources` are the lists below, in this order.
# Each file is compiled once per VM, without a -D that changes what it is.
# The folders are the layers: csrc/core (no Lua, no transport), csrc/curl (the
# libcurl transport), csrc/lua (the Lua binding, a file per object); rocks/redis/csrc and
# rocks/s3/csrc are the redis and s3 rocks' C.

# The core: no Lua, no libcurl (the C tests and the fuzz targets link it alone).
SV_SRC       := csrc/core/buf.c csrc/core/error.c csrc/core/text.c csrc/core/url.c csrc/core/clock.c \
                csrc/core/id.c csrc/core/json.c csrc/core/models.c csrc/core/answer.c csrc/core/verdict.c csrc/core/limits.c \
                csrc/core/journal.c csrc/core/part.c csrc/core/media.c
# libcurl's transport: the multi handle (multi.c), what an exchange sends (send.c) and what comes back (body.c)
SV_HTTP_SRC  := csrc/curl/multi.c csrc/curl/send.c csrc/curl/body.c
# webhook signatures on libcrypto (HMAC-SHA256, base64), and a video's check as it
# passes (stream.c: its SHA-256 and the MP4 check): sign.so only, linked with the
# Makefile's CRYPTO_LIBS (the C tests and the fuzz targets do without it)
SIGN_SRC     := csrc/core/sign.c csrc/core/stream.c
# what the Lua modules share (the error table, the verdict, the .part handle)
LSV_SRC      := csrc/lua/error.c csrc/lua/verdict.c csrc/lua/part.c
# starvideos.core's own objects: its module functions, the commit, the journal's lock,
# the media readers
CORE_LUA_SRC := csrc/lua/core.c csrc/lua/commit.c csrc/lua/lock.c csrc/lua/media.c
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
# starvideos.sigv4 (sigv4.so: SigV4, S3's percent-encoding and each part's sums, on
# libcrypto): the starvideos-s3 rock's C module (rocks/s3/csrc), loaded by its bucket sink
# alone.  Of the core it links what it uses: the buffers, errors and hex (buf.c,
# error.c, text.c), the video's check its parts are fed through (stream.c, on
# media.c's MP4 check) and the binding's error table and stream (lua/error.c,
# lua/stream.c; not lua/verdict.c), with the Makefile's SECTIONS, so that the linker
# drops what of those files it does not call.
SIGV4_SRC     := rocks/s3/csrc/sigv4.c rocks/s3/csrc/parts.c
SIGV4_CORE_SRC := csrc/core/buf.c csrc/core/error.c csrc/core/text.c csrc/core/media.c csrc/core/stream.c \
                  csrc/lua/error.c csrc/lua/stream.c
SIGV4_MOD_SRC := $(SIGV4_CORE_SRC) $(SIGV4_SRC) rocks/s3/csrc/lua.c
# starvideos.redis (redis.so: the store's connection, hiredis' protocol reader and
# writer over its own socket, TLS on OpenSSL; loaded only when a store is used;
# built only where hiredis is found, see the Makefile's HIREDIS).  Alone: it needs
# neither the core nor Lua but the binding's API.
REDIS_MOD_SRC := rocks/redis/csrc/redis.c rocks/redis/csrc/sock.c
# starvideos.fleet.native (fleet/native.so: the redis rock's grammar, a store's URL
# and a key's Cluster slot, in plain C): built everywhere, hiredis or not, so that a
# store's URL is read where redis.so is not; it needs neither the core nor hiredis.
FLEET_SRC     := rocks/redis/csrc/url.c
FLEET_MOD_SRC := $(FLEET_SRC) rocks/redis/csrc/native.c
