# starvideos: build, test, demo.  `make test` and `make demo` work from a fresh clone.
# `make` only builds: it never calls a package manager (any Linux with a C
# compiler, Lua's headers and libcurl's).  Packages are installed by `make deps`, all of them,
# and by each goal of INSTALL_GOALS (test, test-hosts, test-all, check, check-build, bench, demo, studio, release),
# its own alone, when something is missing and apt-get exists (tools/deps.sh), before anything else.
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

# Debian packages, by the goal that uses them (tools/deps.sh installs those missing, where apt-get is).  A plain
# `make` installs nothing.  Each goal of INSTALL_GOALS first installs its list (GOAL_DEPS_<goal>), then makes itself
# again in a new make (SV_DEPS_DONE=1, below): what the Makefile finds as it is read (pkg-config's LUA_INC, the redis
# rock's HIREDIS) and every build step come after the install.
#   BUILD_DEPS    a plain `make`: a C compiler, Lua 5.4's headers, libcurl's, OpenSSL's, lua-cjson (the library's and
#                 the command line's one Lua dependency)
#   DEMO_DEPS     `make demo`: the build's, LuaSocket and lua-argparse for the emulator
#   FAST_DEPS     `make test`, the fast tier (spec/ and rocks/*/spec/ but their hosts/): the demo's, busted, luacheck,
#                 zsh and fish (spec/tools/completion_spec.lua runs `starvideos completion`'s scripts in each shell),
#                 nodejs and npm (the specs' npm packages from spec/npm by mk/npm.mk, the core's and the rocks': s3rver,
#                 the SDK's signer; Debian's nodejs has no npm, NodeSource's provides it: tools/deps.sh), ffmpeg (the
#                 specs that decode videos: spec/lineage_spec.lua and spec/film_spec.lua, a rock's too), openssl
#                 (spec/extras/webhook_spec.lua signs with it), strace (the transport cases' commit on libcurl,
#                 spec/curl/transport_cases_spec.lua, and on nginx), locales (spec/core/answer_spec.lua's decimal comma:
#                 localedef makes de_DE from its sources); and what each rock's rocks/<rock>/rock.mk adds.
#                 (Its cases that need nginx, LuaJIT, promtool or another VM pend where those are missing.)
#   HOST_DEPS     `make test-hosts`' own: luarocks (spec/hosts/luarocks_spec.lua), nginx with its lua module, curl and
#                 LuaJIT's headers (the nginx specs; nginx's modules, NGX_SO), LuaSec and time (spec/hosts/bench_spec.lua),
#                 valgrind (spec/hosts/oom_valgrind_spec.lua, embed_spec.lua), love and xvfb (LÖVE), tinyproxy
#                 (proxy_spec.lua), faketime (clock_skew_spec.lua), prometheus (promtool and the server: the specs
#                 of metrics and dashboards), ccache
#                 (the hosts specs' repeated builds: spec/hosts/support/ccache.lua), chromium (studio_spec.lua)
#   VM_DEPS_<vm>  each VM's interpreter and headers but Lua 5.4's (the build's) and Lua 5.5's (built from VENDOR,
#                 mk/lua55.mk); VM_DEPS all of them: `make test VM=<vm>` installs its VM's, test-hosts (its #hosts
#                 cases run under every VM) and test-all every VM's
#   RELEASE_DEPS  `make release` (mk/release.mk) and spec/hosts/release_spec.lua: luarocks, zip, the cross compiler
#                 and binutils of each arch of RELEASE_CROSS (aarch64 on x86_64), qemu-user to run the arm64 rocks
#   CHECK_DEPS    `make check` and `make check-build` (mk/check.mk): clang and its ASan runtime, valgrind
#   BENCH_DEPS    `make bench` (mk/bench.mk): the fast tier's, nginx with its lua module, curl, LuaSec, time, and
#                 LÖVE under Xvfb on LuaJIT (bench/lineage_jobs.lua)
#   STUDIO_DEPS   `make studio` (mk/studio.mk): the demo's, nginx with its lua module, LuaJIT's headers
# Each rock's rocks/<rock>/rock.mk adds the packages its own specs need to its tier's list (FAST_DEPS, HOST_DEPS).
# `make deps` installs DEPS, all of them.
BUILD_DEPS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson pkg-config gcc make
DEMO_DEPS  := $(BUILD_DEPS) lua-socket lua-argparse
FAST_DEPS  := $(DEMO_DEPS) lua-busted lua-check zsh fish nodejs npm ffmpeg openssl strace locales
HOST_DEPS  := luarocks nginx libnginx-mod-http-lua curl luajit2 libluajit2-5.1-dev lua-sec time valgrind love xvfb \
              tinyproxy faketime prometheus ccache chromium
VM_DEPS_lua5.1 := lua5.1 liblua5.1-0-dev
VM_DEPS_lua5.2 := lua5.2 liblua5.2-dev
VM_DEPS_lua5.3 := lua5.3 liblua5.3-dev
VM_DEPS_luajit := luajit2 libluajit2-5.1-dev
VM_DEPS    := $(foreach vm,$(VMS),$(VM_DEPS_$(vm)))
RELEASE_CROSS ?= $(if $(filter x86_64,$(shell uname -m)),aarch64)
RELEASE_DEPS  := luarocks zip binutils $(foreach a,$(RELEASE_CROSS),gcc-$(a)-linux-gnu binutils-$(a)-linux-gnu) qemu-user
CHECK_DEPS := clang libclang-rt-dev valgrind
BENCH_DEPS := nginx libnginx-mod-http-lua curl lua-sec time love xvfb luajit2 libluajit2-5.1-dev
STUDIO_DEPS := $(DEMO_DEPS) luajit2 libluajit2-5.1-dev nginx libnginx-mod-http-lua
# (deferred: a rock.mk adds to FAST_DEPS and HOST_DEPS after these lines; make test's VM is `make test VM=<vm>`'s)
VM ?= lua5.4
GOAL_DEPS_test       = $(FAST_DEPS) $(VM_DEPS_$(VM))
GOAL_DEPS_test-hosts = $(FAST_DEPS) $(HOST_DEPS) $(VM_DEPS) $(RELEASE_DEPS)
GOAL_DEPS_test-all   = $(GOAL_DEPS_test-hosts)
GOAL_DEPS_check      = $(FAST_DEPS) $(CHECK_DEPS)
GOAL_DEPS_check-build = $(BUILD_DEPS) $(CHECK_DEPS)
GOAL_DEPS_bench      = $(FAST_DEPS) $(BENCH_DEPS)
GOAL_DEPS_demo       = $(DEMO_DEPS)
GOAL_DEPS_studio     = $(STUDIO_DEPS)
GOAL_DEPS_release    = $(BUILD_DEPS) $(VM_DEPS) $(RELEASE_DEPS)
INSTALL_GOALS := test test-hosts test-all check check-build bench demo studio release
DEPS        = $(FAST_DEPS) $(HOST_DEPS) $(VM_DEPS) $(RELEASE_DEPS) $(CHECK_DEPS) $(BENCH_DEPS) $(STUDIO_DEPS)
# a list without its repeated words, in its order
uniq        = $(if $(1),$(firstword $(1)) $(call uniq,$(filter-out $(firstword $(1)),$(1))))
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
#   FAST_DEPS, HOST_DEPS   the Debian packages its specs need, of the fast tier and of the hosts tier
# and FUZZ_WITH_<target>: the rock's C that the fuzz target of its rocks/<rock>/csrc/fuzz/fuzz_<target>.c links
# (mk/fuzz.mk).  The generic rules of the objects below build its rocks/<rock>/csrc/ too.
ROCK_VM_SOS     :=
ROCK_VM_RULES   :=
ROCK_ASAN_TESTS :=
ROCK_ASAN_SOS   :=
# (a rock.mk's rules come before `all`: a plain `make` still makes all)
.DEFAULT_GOAL := all
include $(sort $(wildcard rocks/*/rock.mk))

# `make test VM=<vm>`: the fast tier on another VM of VMS (tools/test-all.sh --fast, as make test-all runs it)
ifneq ($(filter test,$(MAKECMDGOALS)),)
ifeq ($(filter $(VM),$(VMS)),)
$(error make test: VM=$(VM) is not one of: $(VMS))
endif
endif

# An install goal (INSTALL_GOALS) is made in two makes.  This first one installs what the goals asked use
# (GOAL_DEPS_<goal>, once for all of them: tools/deps.sh --if-possible, which says so and goes on where there is no
# apt-get) and makes the same goals again in a second make that reads the Makefile anew, the packages in place;
# nothing else happens here.  SV_DEPS_DONE=1, in the second make's environment, is not passed on to its commands
# (a spec's own `make -n test` installs as a user's does); `make SV_DEPS_DONE=1 test` installs nothing.  (VM and
# SPECS given to make test reach the second make in MAKEFLAGS, not the specs' environment.)
unexport SV_DEPS_DONE VM SPECS
INSTALL_FOR := $(if $(SV_DEPS_DONE),,$(filter $(INSTALL_GOALS),$(MAKECMDGOALS)))
ifneq ($(INSTALL_FOR),)
.PHONY: $(MAKECMDGOALS)
$(firstword $(MAKECMDGOALS)):
	@sh tools/deps.sh --if-possible $(call uniq,$(foreach g,$(INSTALL_FOR),$(GOAL_DEPS_$(g))))
	@SV_DEPS_DONE=1 $(MAKE) --no-print-directory $(MAKECMDGOALS)
$(filter-out $(firstword $(MAKECMDGOALS)),$(MAKECMDGOALS)):
	@:
else

# `make luajit`: every C module a LuaJIT host loads (LÖVE, nginx, OpenResty: docs/game-engines.md,
# docs/openresty.md), libcurl's transport too
LUAJIT_SO := $(NGX_SO) build/luajit/starvideos/curl.so

.PHONY: all deps test test-hosts test-all check lint demo clean luajit
all: $(SO) $(TEST_BINS) $(COMPAT_SO)
luajit: $(LUAJIT_SO)

# The core alone, without Lua: its C tests link only libcurl.
$(TEST_BIN): csrc/test/test_core.c csrc/test/tap.h $(call objs,$(SV_SRC) $(SV_HTTP_SRC))
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $(filter-out %.h,$^) $(CURL_LIBS) -lm -ldl -pthread

build/obj/%.o: csrc/%.c csrc/core/sv_core.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -c $< -o $@
build/obj/rocks/%.o: rocks/%.c csrc/core/sv_core.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -c $< -o $@
$(patsubst csrc/%.c,build/obj/%.o,$(filter csrc/curl/%,$(ALL_SRC))): csrc/curl/transport.h csrc/curl/exchange_fields.h csrc/curl/internal.h
$(patsubst csrc/%.c,build/obj/%.o,$(filter csrc/lua/%,$(ALL_SRC))): csrc/lua/lsv.h csrc/lua/compat.h csrc/curl/transport.h csrc/curl/exchange_fields.h

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
$(COMPAT_SO): csrc/test/compat_test.c csrc/lua/compat.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -shared -o $@ $<

# The same for every VM: build/<vm>/starvideos/{core,curl,sign}.so and build/<vm>/compat_test.so,
# objects in build/<vm>/obj (a rock's modules: its templates of ROCK_VM_RULES, called the same way).
define VM_RULES
build/$(1)/obj/%.o: csrc/%.c csrc/core/sv_core.h | $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -c $$< -o $$@
build/$(1)/obj/rocks/%.o: rocks/%.c csrc/core/sv_core.h | $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -c $$< -o $$@
$$(patsubst csrc/%.c,build/$(1)/obj/%.o,$$(filter csrc/curl/%,$$(ALL_SRC))): csrc/curl/transport.h csrc/curl/exchange_fields.h csrc/curl/internal.h
$$(patsubst csrc/%.c,build/$(1)/obj/%.o,$$(filter csrc/lua/%,$$(ALL_SRC))): csrc/lua/lsv.h csrc/lua/compat.h \
  csrc/curl/transport.h csrc/curl/exchange_fields.h

build/$(1)/starvideos/core.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(CORE_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ -lm -ldl -pthread

build/$(1)/starvideos/sign.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(SIGN_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ $$(CRYPTO_LIBS) -lm -ldl -pthread

build/$(1)/starvideos/curl.so: $$(patsubst build/obj/%,build/$(1)/obj/%,$$(CURL_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ $$(CURL_LIBS) -lm -ldl -pthread

build/$(1)/compat_test.so: csrc/test/compat_test.c csrc/lua/compat.h | $$(VM_PRE_$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(INC_$(1)) -shared -o $$@ $$<
endef
$(foreach vm,$(VMS),$(eval $(call VM_RULES,$(vm))))
$(foreach rules,$(ROCK_VM_RULES),$(foreach vm,$(VMS),$(eval $(call $(rules),$(vm)))))

VM_SOS    := $(foreach vm,$(VMS),build/$(vm)/starvideos/core.so build/$(vm)/starvideos/curl.so \
             build/$(vm)/starvideos/sign.so $(addprefix build/$(vm)/,$(ROCK_VM_SOS)) build/$(vm)/compat_test.so)

# Install what is missing, so a fresh Debian machine needs nothing else: `make deps` installs DEPS, every package
# of every goal, and fails where there is no apt-get (it lists the packages).  (The install goals install their own
# first: INSTALL_GOALS, above.)
deps:
	@sh tools/deps.sh $(call uniq,$(DEPS))

# luacheck (std "min": names every VM has, see .luacheckrc), luac5.1 for the
# syntax (luacheck reads 5.4's: //, goto, <close>, ...; where lua5.1 is not installed, as the fast tier does not
# install it, one line says so: spec/tools/vm_syntax_spec.lua checks the grammar on lua5.1 in make test-all), and
# tools/shape.lua: no function over 60, no require cycle (a library module over 400 lines: an alarm it prints).
# luacheck runs 40 files a process, as many processes at once as cores.  (LINT_RUN: make test-all runs it too, in
# its own shell: a line with $(MAKE) would run under make -n.)
LUA_FILES  = $(shell find lua rocks spec -name '*.lua') bin/starvideos
LINT_RUN   = status=0; \
	{ find lua rocks spec bench tools types examples/studio -name '*.lua'; echo bin/starvideos; } | xargs -P "$$(nproc)" -n 40 luacheck -q --formatter plain || status=1; \
	if command -v luac5.1 >/dev/null 2>&1; then luac5.1 -p $(LUA_FILES) || status=1; \
	else echo "lint: luac5.1 not installed: Lua 5.1's grammar not checked (Debian: lua5.1; make test-all checks it)"; fi; \
	lua5.4 tools/shape.lua > /dev/null || status=1; [ $$status = 0 ]
lint:
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

# The tiers build what they need (and `make test` lints) a job a core, in the second make (INSTALL_GOALS: after the
# install).
ifneq ($(filter test test-hosts test-all,$(MAKECMDGOALS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

# `make test VM=<vm>` (one of VMS): the same specs on that VM, its modules built into build/<vm>/, run as make
# test-all runs its part (tools/test-all.sh --fast).  SPECS="FILE...": those files alone, the command
# tools/run-specs.sh prints after a failure (make test-hosts and make check take it too).
# (LuaJIT's modules, where an earlier `make luajit` left them, made again when stale: the fast
# tier's nginx cases load them when they are there)
ifeq ($(VM),lua5.4)
TEST_RUN = RERUN='make test SPECS="{}"' sh tools/run-specs.sh $(LUA) $(or $(SPECS),$(TEST_SPECS))
else
TEST_RUN = sh tools/test-all.sh --fast $(VM) $(SPECS)
endif
test: $(SO) $(TEST_BINS) $(COMPAT_SO) $(wildcard $(NGX_SO)) $(if $(filter-out lua5.4,$(VM)),$(filter build/$(VM)/%,$(VM_SOS))) lint
	@$(TEST_RUN)

test-hosts: $(SO) $(TEST_BINS) $(COMPAT_SO) $(HOST_BUILDS)
	@TIER=hosts RERUN='make test-hosts SPECS="{}"' sh tools/run-specs.sh $(LUA) $(or $(SPECS),$(HOST_SPECS) $(TAGGED_SPECS))

# Lint once, then `make test`'s specs on every VM, each loading its own
# build/<vm>/ modules and running the emulator and the CLI under itself, then
# the hosts' specs; one line per part, then the total.  A failed lint does
# not stop the suites: it counts as one failure in the total (and the exit status).
test-all: $(SO) $(TEST_BINS) $(COMPAT_SO) $(VM_SOS) $(HOST_BUILDS)
	@lint=ok; ( $(LINT_RUN) ) || lint=failed; \
	LINT_RESULT=$$lint sh tools/test-all.sh $(VMS)

# docs/matrix.md, the promises against the places, written from the cells the last `make test-all` proved
# (build/matrix/); that run checks the page against them (tools/matrix.lua)
matrix:
	@$(LUA) tools/matrix.lua write build/matrix
.PHONY: matrix

demo: $(SO)
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
# its interpreter, build/vm5.5/bin/lua5.5, first on PATH).  (VM: set with the packages, above)
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
endif # (INSTALL_FOR: the second make, or a goal that installs nothing)
