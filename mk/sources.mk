# The C sources: the one list the Makefile, the fuzz targets (mk/fuzz.mk), the
# static library (mk/static.mk), make check (mk/check.mk) and both rockspecs
# build from.  A rockspec cannot include this file, so spec/build_spec.lua
# checks that each rockspec's `sources` are the lists below, in this order.
# Each file is compiled once per VM, without a -D that changes what it is.

# The core: no Lua, no libcurl (the C tests and the fuzz targets link it alone).
SV_SRC       := csrc/sv_util.c csrc/sv_json.c csrc/sv_models.c csrc/sv_answer.c csrc/sv_call.c \
                csrc/sv_file.c csrc/sv_commit.c
# libcurl's transport
SV_HTTP_SRC  := csrc/sv_http.c
# webhook signatures on libcrypto (HMAC-SHA256, base64): sign.so only, linked with
# the Makefile's CRYPTO_LIBS (the C tests and the fuzz targets do without it)
SIGN_SRC     := csrc/sv_sign.c
# what the two Lua modules share (the error table, the verdict, a download's open file)
LSV_SRC      := csrc/lsv_util.c
# starvideos.core (core.so: neither libcurl nor libcrypto, so `require "starvideos"`
# is quick), starvideos.curl (curl.so: the transport, loaded with the first client)
# and starvideos.sign (sign.so: the webhook signatures, the one module linking
# libcrypto, loaded on first use by notify and verify_webhook)
CORE_MOD_SRC := $(SV_SRC) $(LSV_SRC) csrc/lsv_core.c
CURL_MOD_SRC := $(SV_SRC) $(SV_HTTP_SRC) $(LSV_SRC) csrc/lsv_curl.c
SIGN_MOD_SRC := $(SV_SRC) $(SIGN_SRC) $(LSV_SRC) csrc/lsv_sign.c
# starvideos.redis (redis.so: the store's connection on hiredis, loaded only when a
# store is used; built only where hiredis is found, see the Makefile's HIREDIS).
# Alone: it needs neither the core nor Lua but the binding's API.
REDIS_MOD_SRC := csrc/lsv_redis.c
