# `make studio` (docs/studio.md): installs what is missing, builds the emulator's core (Lua 5.4) and
# the C modules for nginx's LuaJIT, then tools/studio.sh starts the emulator (unless
# STARVIDEOS_BASE_URL and STARVIDEOS_API_KEY are set) and nginx on 127.0.0.1 with
# examples/studio/, prints the page's URL and waits; Ctrl-C stops what it started.
# STUDIO_PORT picks the port, STUDIO_DIR the folder of its journal and videos (build/studio).
# What it needs, and no more (a fresh machine gets the page in a few minutes, not the test tiers' packages):
# the build (Lua 5.4 and nginx's LuaJIT, libcurl, libcrypto), lua-cjson, LuaSocket and argparse (the emulator),
# nginx with its lua module.
# (the Makefile's STUDIO_DEPS, installed before the second make: INSTALL_GOALS)
studio: $(SO) $(LUAJIT_SO)
	@sh tools/studio.sh
.PHONY: studio
