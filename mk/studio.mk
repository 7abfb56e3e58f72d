# `make studio` (docs/studio.md): installs what is missing, builds the emulator's core (Lua 5.4) and
# the C modules for nginx's LuaJIT, then tools/studio.sh starts the emulator (unless
# STARVIDEOS_BASE_URL and STARVIDEOS_API_KEY are set) and nginx on 127.0.0.1 with
# examples/studio/, prints the page's URL and waits; Ctrl-C stops what it started.
# STUDIO_PORT picks the port, STUDIO_DIR the folder of its journal and videos (build/studio).
# What it needs, and no more (a fresh machine gets the page in a few minutes, not the test tiers' packages):
# the build (Lua 5.4 and nginx's LuaJIT, libcurl, libcrypto), lua-cjson, LuaSocket and argparse (the emulator),
# nginx with its lua module.
STUDIO_DEPS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson lua-argparse lua-socket pkg-config gcc \
               make luajit2 libluajit2-5.1-dev nginx libnginx-mod-http-lua
studio-deps:
	@sh tools/deps.sh --if-possible $(STUDIO_DEPS)
studio: studio-deps $(SO) $(LUAJIT_SO)
	@sh tools/studio.sh
.PHONY: studio studio-deps
