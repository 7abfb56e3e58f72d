# `make curl-compat`: the C compiled as libcurl 7.68 sees it (tools/curl-compat.sh,
# csrc/curl/curl_versions.txt); spec/hosts/curl_compat_spec.lua runs it too.

curl-compat:
	@sh tools/curl-compat.sh

.PHONY: curl-compat

# `make rock`: `luarocks make` of a rockspec (ROCKSPEC, the core's scm one unless given) from a copy of
# the checkout under build/rock-src/: LuaRocks' builtin build writes each object beside its source
# (csrc/**/*.o) and the modules into a top-level starvideos/ of the folder it builds in, so that a
# `luarocks make` at the top of the checkout leaves both there (`make clean` removes them); this one
# leaves them under build/rock-src/.  LUAROCKS_FLAGS: luarocks' own (--lua-version, --tree with an absolute
# path, --local, --deps-mode, LUA_INCDIR=...).
ROCKSPEC       ?= rockspec/starvideos-scm-1.rockspec
LUAROCKS       ?= luarocks
LUAROCKS_FLAGS ?= --lua-version=5.4
rock:
	@[ -f "$(ROCKSPEC)" ] || { echo "rock: no rockspec $(ROCKSPEC) (ROCKSPEC=, e.g. rocks/<rock>/starvideos-<rock>-scm-1.rockspec)" >&2; exit 2; }
	@rm -rf build/rock-src && mkdir -p build/rock-src
	@tar -c --exclude=./build --exclude=./.git --exclude=./demo-out --exclude=./spec/npm/node_modules \
	  --exclude=./starvideos --exclude='*.o' . | tar -x -C build/rock-src
	cd build/rock-src && $(LUAROCKS) make $(ROCKSPEC) $(LUAROCKS_FLAGS)

.PHONY: rock
