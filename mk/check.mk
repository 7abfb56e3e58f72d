# `make check`: look for memory errors, leaks and undefined behaviour.
#   1. the C tests (csrc/test/test_core.c, and each rock's: ROCK_ASAN_TESTS, its rocks/<rock>/rock.mk) built
#      with ASan + UBSan, leaks checked;
#   2. `make test`'s specs (SPECS="FILE...": those alone) whose code under test runs in busted's own process
#      (ASAN_SPECS: all but those of nginx, a C host, luarocks, the make
#      targets and the command line's child processes, whose modules are not
#      this build) on lua5.4 with an ASan + UBSan build of the modules,
#      build/asan/starvideos/core.so and sign.so (and a rock's: ROCK_ASAN_SOS).  lua5.4 is not instrumented, so the ASan
#      runtime is preloaded (the module is linked with -shared-libasan and its
#      UBSan handlers come from the same runtime).  Reports go to build/asan/logs/
#      (subprocesses' too) and any report is a failure.  Leaks are not checked
#      there: the interpreter and busted keep memory until exit;
#   3. valgrind memcheck over the plain C tests (TEST_BINS), and over a Lua run of
#      create / wait / download / resumed download / resume / a job against the
#      emulator, and of a media request past 5 redirects on the transport alone
#      (spec/fixtures/memcheck.lua); errors and definite leaks fail.
# All three run; the target fails when any of them found something.

# the specs of 2.: `make test`'s, but those whose cases are mostly child
# processes given build/?.so (the command line's, keep's), and cli_input's, whose children run under `ulimit -v`
# (ASan's shadow memory reserves more than any such limit: the child cannot start)
ASAN_SKIP  := cli cli_ops keep cli_input
ASAN_SPECS  = $(filter-out $(foreach s,$(ASAN_SKIP),%/$(s)_spec.lua),$(TEST_SPECS))

SAN_CC     ?= clang
SAN_FLAGS  := -g -O1 -fno-omit-frame-pointer \
              -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
ASAN_RT    := $(shell $(SAN_CC) -print-file-name=libclang_rt.asan-$(shell uname -m).so 2>/dev/null)
ASAN_SO    := build/asan/starvideos/core.so
ASAN_SIGN  := build/asan/starvideos/sign.so
ASAN_TEST  := build/asan/test_core
ASAN_LOGS  := build/asan/logs
# the C tests and the modules, the rocks' too (each rocks/<rock>/rock.mk adds its own rules and names to
# ROCK_ASAN_TESTS and ROCK_ASAN_SOS)
ASAN_TESTS := $(ASAN_TEST) $(ROCK_ASAN_TESTS)
ASAN_SOS   := $(ASAN_SO) $(ASAN_SIGN) $(ROCK_ASAN_SOS)
VALGRIND   ?= valgrind

$(ASAN_TEST): csrc/test/test_core.c csrc/test/tap.h $(SV_SRC) $(SV_HTTP_SRC) csrc/core/sv_core.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) $(DEFS) -o $@ csrc/test/test_core.c $(SV_SRC) $(SV_HTTP_SRC) $(CURL_LIBS) -lm

# one module with the transport linked in (core.curl, as in the static library);
# the signatures a module of their own, as sign.so is (loaded on first use)
$(ASAN_SO): $(ALL_SRC) csrc/core/sv_core.h csrc/curl/internal.h csrc/lua/lsv.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(LUA_INC) -shared -shared-libasan \
	  -o $@ $(filter-out $(SIGN_SRC) csrc/lua/sign.c csrc/lua/stream.c,$(ALL_SRC)) $(CURL_LIBS) -lm
# the module on libcrypto: the signatures (sign.so), of its own (a rock's on libcrypto: the same, its rock.mk)
$(ASAN_SIGN): $(SIGN_MOD_SRC) csrc/core/sv_core.h csrc/lua/lsv.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(LUA_INC) -shared -shared-libasan \
	  -o $@ $(SIGN_MOD_SRC) $(CRYPTO_LIBS) -lm

# the sanitized builds alone, without running anything
check-build: $(ASAN_TESTS) $(ASAN_SOS)

check: $(ASAN_TESTS) $(ASAN_SOS) $(SO) $(TEST_BINS) $(COMPAT_SO)
	@test -f "$(ASAN_RT)" || { echo "check: no ASan runtime at '$(ASAN_RT)' (install libclang-rt-dev)"; exit 1; }
	@rm -rf $(ASAN_LOGS); mkdir -p $(ASAN_LOGS); \
	c=0; lua=0; vg=0; \
	echo "== 1/3 C tests with ASan + UBSan"; \
	for b in $(ASAN_TESTS); do \
	  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $$b > $$b.out 2>&1 || c=1; \
	  grep -v '^ok ' $$b.out; \
	done; \
	echo "== 2/3 busted on $(LUA) with $(ASAN_SO)"; \
	LD_PRELOAD="$(ASAN_RT)" \
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:log_path=$(CURDIR)/$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(CURDIR)/$(ASAN_LOGS)/ubsan \
	LUA_CPATH='build/asan/?.so;;' \
	  $(LUA) -e 'local p = package.searchpath("starvideos.core", package.cpath); assert(p and p:find("build/asan/", 1, true), "not the ASan module: " .. tostring(p)); require "starvideos.core"' || lua=1; \
	LD_PRELOAD="$(ASAN_RT)" \
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:log_path=$(CURDIR)/$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(CURDIR)/$(ASAN_LOGS)/ubsan \
	LUA_CPATH='build/asan/?.so;build/?.so;;' \
	BUSTED_ARGS="--cpath=build/asan/?.so;build/?.so $(BUSTED_ARGS)" RERUN='make check SPECS="{}"' \
	  sh tools/run-specs.sh $(LUA) $(or $(SPECS),$(ASAN_SPECS)) > build/asan/busted.out 2>&1 || lua=1; \
	grep -vE '^(spec|rocks)/' build/asan/busted.out | tail -n 40; \
	if ls $(ASAN_LOGS)/* >/dev/null 2>&1; then \
	  lua=1; echo "sanitizer reports in $(ASAN_LOGS):"; head -n 60 $(ASAN_LOGS)/*; \
	else echo "no sanitizer report"; fi; \
	for b in $(TEST_BINS); do \
	  echo "== 3/3 valgrind memcheck over $$b"; one=0; \
	  $(VALGRIND) --tool=memcheck --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    --log-file=$$b.valgrind.log $$b > $$b.valgrind.out 2>&1 || one=1; \
	  tail -n 1 $$b.valgrind.out; \
	  grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|in use at exit|All heap blocks' $$b.valgrind.log \
	    | sed 's/^==[0-9]*== */valgrind: /'; \
	  if [ $$one != 0 ]; then vg=1; cat $$b.valgrind.log; fi; \
	done; \
	echo "== 3/3 valgrind memcheck over a Lua run (spec/fixtures/memcheck.lua)"; \
	$(VALGRIND) --tool=memcheck --error-exitcode=1 --leak-check=full \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --log-file=build/valgrind-lua.log $(LUA) spec/fixtures/memcheck.lua > build/valgrind-lua.out 2>&1 || vg=1; \
	tail -n 1 build/valgrind-lua.out; \
	grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|in use at exit|All heap blocks' build/valgrind-lua.log \
	  | sed 's/^==[0-9]*== */valgrind (lua): /'; \
	if [ $$vg != 0 ]; then tail -n 60 build/valgrind-lua.log; cat build/valgrind-lua.out; fi; \
	echo "== check: C tests $$( [ $$c = 0 ] && echo ok || echo FAILED), busted+ASan $$( [ $$lua = 0 ] && echo ok || echo FAILED), valgrind $$( [ $$vg = 0 ] && echo ok || echo FAILED)"; \
	[ $$c = 0 ] && [ $$lua = 0 ] && [ $$vg = 0 ]

.PHONY: check check-build
