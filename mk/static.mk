# `make static`: build/libstarvideos.a for hosts that link Lua in (a game engine),
# and build/include/starvideos.h (csrc/lua/starvideos.h: its luaopen_* prototypes):
# the C core, the binding and the Lua modules of lua/starvideos/ (its folders too) as
# data (no file lookup at run time).  The emulator and the command line (cli/)
# are left out: a game needs neither, and the emulator needs LuaSocket.
#
# The archive exports nothing but luaopen_starvideos (the whole module) and
# luaopen_starvideos_core (the C part alone): hidden visibility still leaves
# every sv_* global in a static archive, so the objects are linked into one
# relocatable object (ld -r), every other global is made local (objcopy), and
# that one object goes into the archive.  The host links it with Lua 5.4,
# libcurl, libcrypto (the webhook signatures: starvideos.sign, compiled in and
# opened by the private require on first use) and lua-cjson (examples/embed/host.c;
# `make embed-host`).
#
#   make static        build/libstarvideos.a, build/include/starvideos.h
#                      (STATIC_LUA_INC=... for another Lua's headers)
#   make embed-host    build/embed/host, the example host (Lua 5.4)
#   make embed-tests   build/embed/static_test, build/embed/threads_test (+ _tsan when it builds)

STATIC_LIB      := build/libstarvideos.a
STATIC_HEADER   := build/include/starvideos.h
STATIC_DIR      := build/static
STATIC_LUA_INC  ?= $(LUA_INC)
# every .lua under lua/starvideos/ (the core rock's), in its subfolders too, but the
# command line's (cli/)
STATIC_LUA_SRC   = $(sort $(filter-out lua/starvideos/cli/%,$(shell find lua/starvideos -name '*.lua' 2>/dev/null)))
STATIC_C_SRC    := $(ALL_SRC) csrc/lua/static.c
STATIC_EXPORTS  := luaopen_starvideos luaopen_starvideos_core
LD              ?= ld
OBJCOPY         ?= objcopy
AR              ?= ar

# The objects, the Lua data and the archive, for one compiler and flags:
# $(1) the folder (build/static, build/static-tsan), $(2) the compile command,
# $(3) the Lua headers.
define STATIC_RULES
$(1)/obj/%.o: csrc/%.c csrc/core/sv_core.h csrc/curl/transport.h csrc/curl/exchange_fields.h csrc/curl/internal.h csrc/lua/lsv.h \
  csrc/lua/compat.h csrc/lua/static.h
	@mkdir -p $$(dir $$@)
	$(2) $(3) -c $$< -o $$@

$(1)/obj/lua_modules.o: $(STATIC_DIR)/lua_modules.c csrc/lua/static.h
	@mkdir -p $$(dir $$@)
	$(2) -Icsrc/lua -c $$< -o $$@

$(1)/libstarvideos.a: $$(patsubst csrc/%.c,$(1)/obj/%.o,$$(STATIC_C_SRC)) $(1)/obj/lua_modules.o
	$$(LD) -r -o $(1)/starvideos-all.o $$^
	$$(OBJCOPY) --localize-hidden $$(addprefix --keep-global-symbol=,$$(STATIC_EXPORTS)) \
	  $(1)/starvideos-all.o $(1)/starvideos.o
	rm -f $$@
	$$(AR) rcs $$@ $(1)/starvideos.o
	@left=$$$$(nm -g --defined-only $$@ | awk 'NF == 3 { print $$$$3 }' | grep -v '^luaopen_' || true); \
	if [ -n "$$$$left" ]; then echo "static: symbols other than luaopen_* left in $$@: $$$$left"; rm -f $$@; exit 1; fi
endef

# The Lua sources as C data, generated at build time.
$(STATIC_DIR)/lua_modules.c: tools/embed-lua.lua mk/static.mk $(STATIC_LUA_SRC)
	@mkdir -p $(dir $@)
	$(LUA) tools/embed-lua.lua $@ lua $(STATIC_LUA_SRC)

$(eval $(call STATIC_RULES,$(STATIC_DIR),$$(CC) $$(ALL_CFLAGS),$$(STATIC_LUA_INC)))

$(STATIC_LIB): $(STATIC_DIR)/libstarvideos.a
	cp $< $@

$(STATIC_HEADER): csrc/lua/starvideos.h
	@mkdir -p $(dir $@)
	cp $< $@

static: $(STATIC_LIB) $(STATIC_HEADER)

# The example host and the C tests that link the archive.  Debian's lua-cjson
# is only a module (cjson.so, a link to liblua5.4-cjson.so.0, which leaves the
# Lua API to the executable): the host links that library by its file name and
# preloads luaopen_cjson and luaopen_cjson_safe itself.  Override CJSON_LIB for
# another system (or a lua-cjson built into the host).
CJSON_LIB       ?= $(firstword $(wildcard /usr/lib/*/liblua5.4-cjson.so.0 /usr/lib/liblua5.4-cjson.so.0 \
                     /usr/lib64/liblua5.4-cjson.so.0) -l:liblua5.4-cjson.so.0)
LUA_LIBS        ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
EMBED_LIBS       = $(STATIC_LIB) $(CJSON_LIB) $(LUA_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) -lm -ldl -pthread
EMBED_CFLAGS     = $(CFLAGS) $(WARN) $(DEFS) $(LUA_INC) -I$(dir $(STATIC_HEADER))
TSAN_CC         ?= clang

build/embed/host: examples/embed/host.c $(STATIC_LIB) $(STATIC_HEADER)
	@mkdir -p $(dir $@)
	$(CC) $(EMBED_CFLAGS) -o $@ $< $(EMBED_LIBS)

build/embed/static_test: csrc/test/static_test.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(EMBED_CFLAGS) -o $@ $< $(EMBED_LIBS)

build/embed/threads_test: csrc/test/threads_test.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(EMBED_CFLAGS) -o $@ $< $(EMBED_LIBS)

# The same test with the archive and the test built with ThreadSanitizer (Lua
# and libcurl are not instrumented: races inside them go unseen; races in our
# code and on what we hand them are reported).
TSAN_FLAGS      := -g -O1 -fno-omit-frame-pointer -fsanitize=thread
TSAN_DIR        := build/static-tsan
$(eval $(call STATIC_RULES,$(TSAN_DIR),$$(TSAN_CC) $$(TSAN_FLAGS) $$(WARN) $$(DEFS) -fPIC -fvisibility=hidden,$$(LUA_INC)))

build/embed/threads_test_tsan: csrc/test/threads_test.c $(TSAN_DIR)/libstarvideos.a
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_FLAGS) $(WARN) $(DEFS) $(LUA_INC) -o $@ $< $(TSAN_DIR)/libstarvideos.a \
	  $(CJSON_LIB) $(LUA_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) -lm -ldl -pthread

# The archive for every VM of `make test-all` (build/<vm>/static/libstarvideos.a)
# and a test that opens it without a package library: the library is Lua 5.4
# for the example host, but builds and runs on 5.1, 5.2, 5.3 and LuaJIT too.
LIBS_lua5.1     ?= -llua5.1
LIBS_lua5.2     ?= -llua5.2
LIBS_lua5.3     ?= -llua5.3
LIBS_lua5.4     ?= $(LUA_LIBS)
LIBS_luajit     ?= $(shell pkg-config --libs luajit 2>/dev/null || echo -lluajit-5.1)
CJSON_lua5.1    ?= $(firstword $(wildcard /usr/lib/*/liblua5.1-cjson.so.0) -l:liblua5.1-cjson.so.0)
CJSON_lua5.2    ?= $(firstword $(wildcard /usr/lib/*/liblua5.2-cjson.so.0) -l:liblua5.2-cjson.so.0)
CJSON_lua5.3    ?= $(firstword $(wildcard /usr/lib/*/liblua5.3-cjson.so.0) -l:liblua5.3-cjson.so.0)
CJSON_lua5.4    ?= $(CJSON_LIB)
CJSON_luajit    ?= $(CJSON_lua5.1)

define STATIC_VM_RULES
$$(eval $$(call STATIC_RULES,build/$(1)/static,$$$$(CC) $$$$(ALL_CFLAGS),$$$$(INC_$(1))))

build/$(1)/static_vm_test: csrc/test/static_vm_test.c build/$(1)/static/libstarvideos.a
	$$(CC) $$(CFLAGS) $$(WARN) $$(DEFS) $$(INC_$(1)) -o $$@ $$< build/$(1)/static/libstarvideos.a \
	  $$(CJSON_$(1)) $$(LIBS_$(1)) $$(CURL_LIBS) $$(CRYPTO_LIBS) -lm -ldl -pthread
endef
$(foreach vm,$(VMS),$(eval $(call STATIC_VM_RULES,$(vm))))

# A host that unloads the module right after closing a transport with downloads
# running (spec/curl/transport_spec.lua).
build/unload_test: csrc/test/unload_test.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) $(LUA_INC) -o $@ $< $(LUA_LIBS) -lm -ldl

# A host whose Lua allocator fails on demand, over t:send and t:result
# (spec/curl/transport_spec.lua, under valgrind).
build/oom_test: csrc/test/oom_test.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) $(LUA_INC) -o $@ $< $(LUA_LIBS) -lm -ldl

embed-host: build/embed/host
embed-tests: build/embed/static_test build/embed/threads_test

.PHONY: static embed-host embed-tests
