# `make fuzz`: the libFuzzer targets of csrc/fuzz/, built with ASan and UBSan, each
# run for FUZZ_SECONDS (default 30) from the committed seed corpus.  New inputs go
# to build/fuzz/work/<target>, crashes to build/fuzz/crashes/<target>/; the logs
# to build/fuzz/<target>.log; csrc/fuzz/<target>.dict, when there is one, is the
# target's libFuzzer dictionary.  Prints executions per target; fails on any finding.
# `make fuzz-replay` runs every target once over its committed corpus only.

FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
FUZZ_TARGETS := json answer build retry_after limits base_url image mp4 audio
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

# each target links the core of mk/sources.mk (no Lua, no libcurl); base_url the redis rock's grammar too
# (FLEET_SRC: a store's URL on the same bytes)
FUZZ_WITH_base_url := $(FLEET_SRC)
build/fuzz/fuzz_%: csrc/fuzz/fuzz_%.c csrc/fuzz/fuzz.h csrc/fuzz/media.h $(SV_SRC) $(FLEET_SRC) csrc/core/sv_core.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(WARN) $(DEFS) -o $@ $< $(SV_SRC) $(FUZZ_WITH_$*) -lm -ldl -pthread

fuzz: $(FUZZ_BINS)
	@fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/work/$$t build/fuzz/crashes/$$t; \
	  dict=; if [ -f csrc/fuzz/$$t.dict ]; then dict=-dict=csrc/fuzz/$$t.dict; fi; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=10 \
	    -rss_limit_mb=2048 -artifact_prefix=build/fuzz/crashes/$$t/ $$dict \
	    build/fuzz/work/$$t csrc/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1; \
	  rc=$$?; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$t.log); \
	  if [ $$rc = 0 ]; then verdict=ok; else verdict="FAILED (exit $$rc, see build/fuzz/$$t.log)"; fail=1; fi; \
	  printf 'fuzz %-12s %10s executions in %ss: %s\n' $$t "$${execs:-?}" $(FUZZ_SECONDS) "$$verdict"; \
	  if [ $$rc != 0 ]; then \
	    grep -E 'property broken|ERROR: |runtime error|SUMMARY|Test unit written' build/fuzz/$$t.log | head -6; \
	  fi; \
	done; \
	exit $$fail

fuzz-replay: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  build/fuzz/fuzz_$$t -runs=0 csrc/fuzz/corpus/$$t > build/fuzz/$$t.replay.log 2>&1 \
	    || { echo "fuzz-replay $$t FAILED"; tail -20 build/fuzz/$$t.replay.log; exit 1; }; \
	  echo "fuzz-replay $$t: $$(ls csrc/fuzz/corpus/$$t | wc -l) inputs ok"; \
	done

.PHONY: fuzz fuzz-replay
