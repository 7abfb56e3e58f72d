# starvideos: build, test, demo.  `make test` and `make demo` work from a fresh clone.
# `make` only builds: it never calls a package manager (any Linux with a C
# compiler, Lua's headers and libcurl's).  Packages are installed by `make deps`,
# and by `make test`, `make test-all` and `make bench` when something is missing
# and apt-get exists (tools/deps.sh); `make demo` installs only what the demo needs.
LUA       ?= lua5.4
LUA_INC   ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CURL_LIBS ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
# libcrypto (OpenSSL) for the webhook signatures of sign.so (csrc/core/sign.c), the
# one module linking it
CRYPTO_LIBS ?= $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
SSL_LIBS    ?= $(shell pkg-config --libs libssl 2>/dev/null || echo -lssl)
CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -std=c99 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Werror=implicit-function-declaration
DEFS      := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
# each function and datum in a section of its own, so that a module linked with GC_SECTIONS keeps only what it
# uses of a file it shares (a rock's module built on some of the core's files: its rocks/<rock>/rock.mk)
SECTIONS  := -ffunction-sections -fdata-sections
GC_SECTIONS := -Wl,--gc-sections
ALL_CFLAGS = $(CFLAGS) $(WARN) $(DEFS) $(SECTIONS) -fPIC -fvisibility=hidden

include mk/sources.mk
# every C file of the three modules (ALL_SRC, mk/sources.mk) is compiled once
# into build/obj/, in its layer's folder there; a rock's (rocks/<rock>/csrc/) in build/obj/rocks/<rock>/csrc/
objs       = $(patsubst %.c,build/obj/%.o,$(patsubst csrc/%,%,$(1)))
# those objects as a VM's ($(1)) build has them (build/<vm>/obj/)
vm_objs    = $(patsubst build/obj/%,build/$(1)/obj/%,$(2))
CORE_OBJ  := $(call objs,$(CORE_MOD_SRC))
CURL_OBJ  := $(call objs,$(CURL_MOD_SRC))
SIGN_OBJ  := $(call objs,$(SIGN_MOD_SRC))
# (SO, NGX_SO: and each rock's modules, added by its rocks/<rock>/rock.mk)
SO        := build/starvideos/core.so build/starvideos/curl.so build/starvideos/sign.so
# the core and the signatures as nginx's LuaJIT loads them (spec/hosts/nginx_spec.lua,
# the webhook and notify specs, examples/openresty/)
NGX_SO    := build/luajit/starvideos/core.so build/luajit/starvideos/sign.so
COMPAT_SO := build/compat_test.so

# Every VM `make test-all` runs the suite on, and where its headers are
# (pkg-config first; override with e.g. `make test-all INC_luajit=-I...`).
# (lua5.5: built with its modules into build/vm5.5/ from the vendored sources, mk/lua55.mk)
VMS          := lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit
INC_lua5.1   ?= $(shell pkg-config --cflags lua5.1 2>/dev/null || echo -I/usr/include/lua5.1)
INC_lua5.2   ?= $(shell pkg-config --cflags lua5.2 2>/dev/null || echo -I/usr/include/lua5.2)
INC_lua5.3   ?= $(shell pkg-config --cflags lua5.3 2>/dev/null || echo -I/usr/include/lua5.3)
INC_lua5.4   ?= $(LUA_INC)
INC_luajit   ?= $(shell pkg-config --cflags luajit 2>/dev/null || echo -I/usr/include/luajit-2.1)
# Lua 5.5, which Debian 12 lacks: the interpreter, its headers and the modules the suite needs on it, built
# by mk/lua55.mk into LUA55 (a prefix of the project's own: never the system)
LUA55        := $(CURDIR)/build/vm5.5
# VENDOR: the sources no registry here carries (../shared/vendor's README.md): shared/vendor beside this checkout,
# beside a worktree's (one folder deeper), else beside the checkout a clone was made from (git clone . /tmp/fresh)
VENDOR_NEAR  := ../shared/vendor ../../shared/vendor $(addsuffix /../shared/vendor,$(shell git config --get \
                remote.origin.url 2>/dev/null | grep '^/'))
VENDOR       ?= $(firstword $(foreach d,$(VENDOR_NEAR),$(wildcard $(abspath $(d)))) $(abspath ../shared/vendor))
export VENDOR # (the specs that build from it find it as make did: release_spec's Lua 5.5)
LUA55_BIN    := $(LUA55)/bin/lua5.5
INC_lua5.5   ?= -I$(LUA55)/include
# what a VM's objects need first (lua5.5: its interpreter and headers)
VM_PRE_lua5.5 := $(LUA55_BIN)

# Debian packages: the build's (a plain `make`: a C compiler, Lua 5.4's headers, libcurl's, OpenSSL's,
# lua-cjson, the library's and the command line's one Lua dependency), the demo's (the build's, and LuaSocket and
# lua-argparse for the emulator),
# then the tests' (test-all: every VM; luarocks for spec/hosts/luarocks_spec.lua; ccache for the hosts
# specs' repeated builds (spec/hosts/support/ccache.lua);
# spec/hosts/nginx_spec.lua: nginx with its lua module, curl, openssl;
# spec/hosts/proxy_spec.lua: tinyproxy; spec/hosts/clock_skew_spec.lua: faketime; nodejs: the specs' npm packages
# from spec/npm by mk/npm.mk (the core's specs' and the rocks'); prometheus (promtool, the server): the specs of
# metrics and dashboards; strace: the nginx specs that look at the files a worker touches; ffmpeg: the specs that
# decode videos (spec/lineage_spec.lua and spec/film_spec.lua take frames and join shots, a rock's too);
# spec/hosts/studio_spec.lua: chromium; zsh, fish:
# spec/tools/completion_spec.lua runs `starvideos completion`'s scripts in each shell; spec/hosts/release_spec.lua:
# zip, the arm64 cross compiler and its binutils, and qemu-user to run the arm64 rocks: mk/release.mk).
# Each rock's rocks/<rock>/rock.mk adds the packages its own specs need to DEPS.
# `make demo` installs DEMO_DEPS only; `make deps`, the test tiers and the bench install DEPS, all of them.
BUILD_DEPS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson pkg-config gcc make
DEMO_DEPS  := $(BUILD_DEPS) lua-socket lua-argparse
TEST_DEPS  := lua-busted lua-check \
             lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev luajit2 libluajit2-5.1-dev \
             luarocks nginx libnginx-mod-http-lua curl openssl lua-sec valgrind time love xvfb \
             tinyproxy faketime nodejs prometheus strace ccache ffmpeg chromium \
             zsh fish zip gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user
DEPS       := $(DEMO_DEPS) $(TEST_DEPS)
# The goals that install what is missing first (when apt-get exists): the tiers and the bench all of DEPS
# (deps-checked), the demo its own (demo-deps-checked); no other goal depends on either, so a plain `make`
# calls no package manager.
INSTALL_GOALS := test test-hosts test-all bench
OTHER_FIRST   := $(if $(filter demo,$(MAKECMDGOALS)),demo-deps-checked,$(if $(filter studio,$(MAKECMDGOALS)),studio-deps))
DEPS_FIRST    := $(if $(filter $(INSTALL_GOALS),$(MAKECMDGOALS)),deps-checked,$(OTHER_FIRST))
BUSTED    := $(LUA) /usr/bin/busted

# the Lua folders of the rocks but the core (rockspec/, the core's; LuaRocks copies a top-level lua/ into every rock
# built there, so each other rock keeps its modules in rocks/<rock>/lua)
ROCK_LUA     := $(sort $(wildcard rocks/*/lua))
lua_path      = $(subst $(eval) ,,$(foreach d,lua $(ROCK_LUA),$(1)$(d)/?.lua;$(1)$(d)/?/init.lua;))
export LUA_PATH  := $(call lua_path,)./?.lua;;
export LUA_CPATH := build/?.so;;

# the C tests, each run by a spec of the fast tier (spec/support/c_tap.lua: spec/core/core_c_spec.lua), a rock's too
TEST_BIN  := build/test_core
TEST_BINS := $(TEST_BIN)

# A rock's build: each rocks/<rock>/rock.mk (a rock with C of its own) holds its source lists, its modules' rules
# and its C tests', and adds them to the hooks of the core's build:
#   SO, NGX_SO, TEST_BINS  its modules of `make all` (and every tier), of nginx's LuaJIT, its C tests
#   ROCK_VM_SOS            its modules' paths under build/<vm>/, built for every VM of `make test-all` (VM_SOS)
#   ROCK_VM_RULES          the names of its templates of per-VM rules, each called with a VM as VM_RULES is
#   ROCK_ASAN_TESTS        its C tests built with ASan + UBSan, which `make check` runs (mk/check.mk)
#   ROCK_ASAN_SOS          its modules built with ASan + UBSan by `make check` and `make check-build`
#   DEPS                   the Debian packages its specs need
# and FUZZ_WITH_<target>: the rock's C that the fuzz target of its rocks/<rock>/csrc/fuzz/fuzz_<target>.c links
# (mk/fuzz.mk).  The generic rules of the objects below build its rocks/<rock>/csrc/ too.
ROCK_VM_SOS     :=
ROCK_VM_RULES   :=
ROCK_ASAN_TESTS :=
ROCK_ASAN_SOS   :=
# (a rock.mk's rules come before `all`: a plain `make` still makes all)
.DEFAULT_GOAL := all
include $(sort $(wildcard rocks/*/rock.mk))

# `make luajit`: every C module a LuaJIT host loads (LÖVE, nginx, OpenResty: docs/game-engines.md,
# docs/openresty.md), libcurl's transport too
LUAJIT_SO := $(NGX_SO) build/luajit/starvideos/curl.so

.PHONY: all deps test test-hosts test-all check lint demo clean luajit
all: $(SO) $(TEST_BINS) $(COMPAT_SO)
luajit: $(LUAJIT_SO)

# The core alone, without Lua: its C tests link only libcurl.
$(TEST_BIN): csrc/test/test_core.c csrc/test/tap.h $(call objs,$(SV_SRC) $(SV_HTTP_SRC))
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $(filter-out %.h,$^) $(CURL_LIBS) -lm -ldl -pthread

build/obj/%.o: csrc/%.c csrc/core/sv_core.h | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -c $< -o $@
build/obj/rocks/%.o: rocks/%.c csrc/core/sv_core.h | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -c $< -o $@
$(patsubst csrc/%.c,build/obj/%.o,$(filter csrc/curl/%,$(ALL_SRC))): csrc/curl/transport.h csrc/curl/internal.h
$(patsubst csrc/%.c,build/obj/%.o,$(filter csrc/lua/%,$(ALL_SRC))): csrc/lua/lsv.h csrc/lua/compat.h csrc/curl/transport.h

build/starvideos/core.so: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ -lm -ldl -pthread

build/starvideos/sign.so: $(SIGN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(CRYPTO_LIBS) -lm -ldl -pthread

build/starvideos/curl.so: $(CURL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(CURL_LIBS) -lm -ldl -pthread

# A module that drives csrc/lua/compat.h (spec/binding/compat_spec.lua).
$(COMPAT_SO): csrc/test/compat_test.c csrc/lua/compat.h | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -shared -o $@ $<

# The same for every VM: build/<vm>/starvideos/{core,curl,sign}.so and build/<vm>/compat_test.so,
# objects in build/<vm>/obj (a rock's modules: its templates of ROCK_VM_RULES, called the same way).
define VM_RULES
build/$(1)/obj/%.o: csrc/%.c csrc/core/sv_core.h | $$(DEPS_FIRST) $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -c $$< -o $$@
build/$(1)/obj/rocks/%.o: rocks/%.c csrc/core/sv_core.h | $$(DEPS_FIRST) $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -c $$< -o $$@
$$(patsubst csrc/%.c,build/$(1)/obj/%.o,$$(filter csrc/curl/%,$$(ALL_SRC))): csrc/curl/transport.h csrc/curl/internal.h
$$(patsubst csrc/%.c,build/$(1)/obj/%.o,$$(filter csrc/lua/%,$$(ALL_SRC))): csrc/lua/lsv.h csrc/lua/compat.h \
  csrc/curl/transport.h

build/$(1)/starvideos/core.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(CORE_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ -lm -ldl -pthread

build/$(1)/starvideos/sign.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(SIGN_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ $$(CRYPTO_LIBS) -lm -ldl -pthread

build/$(1)/starvideos/curl.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(CURL_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ $$(CURL_LIBS) -lm -ldl -pthread

build/$(1)/compat_test.so: csrc/test/compat_test.c csrc/lua/compat.h | $$(DEPS_FIRST) $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -shared -o $$@ $$<
endef
$(foreach vm,$(VMS),$(eval $(call VM_RULES,$(vm))))
$(foreach rules,$(ROCK_VM_RULES),$(foreach vm,$(VMS),$(eval $(call $(rules),$(vm)))))

VM_SOS    := $(foreach vm,$(VMS),build/$(vm)/starvideos/core.so build/$(vm)/starvideos/curl.so \
             build/$(vm)/starvideos/sign.so $(addprefix build/$(vm)/,$(ROCK_VM_SOS)) build/$(vm)/compat_test.so)

# Install what is missing, so a fresh Debian machine needs nothing else: `make
# deps` fails where there is no apt-get (it lists the packages); before test,
# test-all and bench, deps-checked only says so and goes on (before demo,
# demo-deps-checked, with the demo's packages).
deps:
	@sh tools/deps.sh $(DEPS)
deps-checked:
	@sh tools/deps.sh --if-possible $(DEPS)
demo-deps-checked:
	@sh tools/deps.sh --if-possible $(DEMO_DEPS)
.PHONY: deps-checked demo-deps-checked

# luacheck (std "min": names every VM has, see .luacheckrc), luac5.1 for the
# syntax (luacheck reads 5.4's: //, goto, <close>, ...; where lua5.1 is not installed, one line says so:
# spec/tools/vm_syntax_spec.lua checks the grammar on lua5.1 in make test-all), and
# tools/shape.lua: no library module over 400 lines, no function over 60, no require cycle.
# luacheck runs 40 files a process, as many processes at once as cores.  (LINT_RUN: make test-all runs it too, in
# its own shell: a line with $(MAKE) would run under make -n.)
LUA_FILES  = $(shell find lua rocks spec -name '*.lua') bin/starvideos
LINT_RUN   = status=0; \
	{ find lua rocks spec bench tools types examples/studio -name '*.lua'; echo bin/starvideos; } | xargs -P "$$(nproc)" -n 40 luacheck -q --formatter plain || status=1; \
	if command -v luac5.1 >/dev/null 2>&1; then luac5.1 -p $(LUA_FILES) || status=1; \
	else echo "lint: luac5.1 not installed: Lua 5.1's grammar not checked (Debian: lua5.1; make test-all checks it)"; fi; \
	lua5.4 tools/shape.lua > /dev/null || status=1; [ $$status = 0 ]
lint: | $(DEPS_FIRST)
	@$(LINT_RUN)

# The suite in tiers, over spec/ (the core's) and each rock's rocks/<rock>/spec/.  `make test`: the specs but
# those under a hosts/ folder (each
# module through its seam, the transport cases on libcurl, the emulator
# workflows), on Lua 5.4, each file in a process of its own, three times as many at
# once as there are cores (they mostly wait on their servers: tools/run-specs.sh),
# but the cases tagged #hosts.  `make test-hosts`: spec/hosts/, rocks/*/spec/hosts/ and those cases once,
# each spec on the VM its host needs (nginx's LuaJIT, LuaRocks trees, a C
# host, LÖVE, a rock's servers, the README's own lines).  `make test-all`: lint,
# `make test` on every VM, then `make test-hosts`; one line per part, then
# the total.
SPEC_DIRS   = spec $(wildcard rocks/*/spec)
TEST_SPECS  = $(sort $(shell find $(SPEC_DIRS) -name '*_spec.lua' -not -path '*/hosts/*' 2>/dev/null))
HOST_SPECS  = $(sort $(wildcard spec/hosts/*_spec.lua rocks/*/spec/hosts/*_spec.lua))
# files of the fast tier whose #hosts cases the hosts tier runs (tools/run-specs.sh)
TAGGED_SPECS = $(shell grep -l -e '#hosts' $(TEST_SPECS) 2>/dev/null)
HOST_BUILDS = $(NGX_SO)

# The tiers build what they need (and `make test` lints) a job a core, each after deps-checked (their
# order-only prerequisite $(DEPS_FIRST)).
ifneq ($(filter test test-hosts test-all,$(MAKECMDGOALS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

# (LuaJIT's modules, where an earlier `make luajit` left them, made again when stale: the fast
# tier's nginx cases load them when they are there)
test: deps-checked $(SO) $(TEST_BINS) $(COMPAT_SO) $(wildcard $(NGX_SO)) lint
	@sh tools/run-specs.sh $(LUA) $(TEST_SPECS)

test-hosts: deps-checked $(SO) $(TEST_BINS) $(COMPAT_SO) $(HOST_BUILDS)
	@TIER=hosts sh tools/run-specs.sh $(LUA) $(HOST_SPECS) $(TAGGED_SPECS)

# Lint once, then `make test`'s specs on every VM, each loading its own
# build/<vm>/ modules and running the emulator and the CLI under itself, then
# the hosts' specs; one line per part, then the total.  A failed lint does
# not stop the suites: it counts as one failure in the total (and the exit status).
test-all: deps-checked $(SO) $(TEST_BINS) $(COMPAT_SO) $(VM_SOS) $(HOST_BUILDS)
	@lint=ok; ( $(LINT_RUN) ) || lint=failed; \
	LINT_RESULT=$$lint sh tools/test-all.sh $(VMS)

# docs/matrix.md, the promises against the places, written from the cells the last `make test-all` proved
# (build/matrix/); that run checks the page against them (tools/matrix.lua)
matrix:
	@$(LUA) tools/matrix.lua write build/matrix
.PHONY: matrix

demo: $(DEPS_FIRST) $(SO)
	@sh tools/demo.sh

# (and what a `luarocks make` at the top of the checkout left: its objects beside the sources, its
# modules in starvideos/; `make rock` builds a rock without them, mk/rocks.mk)
clean:
	rm -rf build starvideos
	find csrc -name '*.o' -exec rm -f {} +

# types/starvideos.lua, the LuaCATS annotations of the public API, made from
# config.lua's option tables and the loaded module (tools/types.lua); committed,
# and spec/types_spec.lua fails when it is not what this makes.
types: $(SO)
	@$(LUA) tools/types.lua --write types/starvideos.lua.tmp && mv types/starvideos.lua.tmp types/starvideos.lua
.PHONY: types

# `eval "$$(make -s env)"`: LUA_PATH and LUA_CPATH for this checkout, as absolute
# paths, so that `lua5.4 script.lua` finds the library from any directory;
# `make -s env VM=luajit` (or lua5.1 .. lua5.3, lua5.5) for the modules built into build/<vm>/ (lua5.5: and
# its interpreter, build/vm5.5/bin/lua5.5, first on PATH).
VM ?= lua5.4
env:
	@case " $(VMS) " in *" $(VM) "*) ;; *) echo "env: VM=$(VM) is not one of: $(VMS)" >&2; exit 2;; esac; \
	dir=$$(pwd); cdir=$$dir/build; [ "$(VM)" = lua5.4 ] || cdir=$$dir/build/$(VM); \
	quote() { printf "'%s'" "$$(printf '%s' "$$1" | sed "s/'/'\\\\''/g")"; }; \
	echo "export LUA_PATH=$$(quote "$(call lua_path,$$dir/);")"; \
	echo "export LUA_CPATH=$$(quote "$$cdir/?.so;;")"; \
	[ "$(VM)" != lua5.5 ] || echo "export PATH=$$(quote "$(LUA55)/bin"):\"\$$PATH\""; \
	[ -f "$$cdir/starvideos/core.so" ] || { [ "$(VM)" = lua5.4 ] && echo "env: not built yet: make" >&2 || \
	  echo "env: not built yet: make build/$(VM)/starvideos/core.so build/$(VM)/starvideos/curl.so build/$(VM)/starvideos/sign.so" >&2; }
.PHONY: env

-include $(filter-out mk/sources.mk,$(wildcard mk/*.mk))
