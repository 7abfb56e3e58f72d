# `make fuzz`: the libFuzzer targets of csrc/fuzz/ and of each rock's rocks/<rock>/csrc/fuzz/ (fuzz_<target>.c),
# built with ASan and UBSan, each run for FUZZ_SECONDS (default 30) from the committed seed corpus beside it
# (<its folder>/corpus/<target>).  New inputs go to build/fuzz/work/<target>, crashes to build/fuzz/crashes/<target>/;
# the logs to build/fuzz/<target>.log; <its folder>/<target>.dict, when there is one, is the target's libFuzzer
# dictionary.  Prints executions per target; fails on any finding.
# `make fuzz-replay` runs every target once over its committed corpus only.

FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
FUZZ_SRCS    := $(sort $(wildcard csrc/fuzz/fuzz_*.c rocks/*/csrc/fuzz/fuzz_*.c))
fuzz_name     = $(patsubst fuzz_%.c,%,$(notdir $(1)))
FUZZ_TARGETS := $(call fuzz_name,$(FUZZ_SRCS))
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
# target:folder, for the loops below
FUZZ_PLACES  := $(foreach f,$(FUZZ_SRCS),$(call fuzz_name,$(f)):$(patsubst %/,%,$(dir $(f))))

# each target links the core of mk/sources.mk (no Lua, no libcurl); a rock's, the rock's C it fuzzes too
# (FUZZ_WITH_<target>, set by its rocks/<rock>/rock.mk)
define fuzz_rule
build/fuzz/fuzz_$(1): $(2) csrc/fuzz/fuzz.h csrc/fuzz/media.h $(SV_SRC) $$(FUZZ_WITH_$(1)) csrc/core/sv_core.h
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) $$(WARN) $$(DEFS) -o $$@ $$< $$(SV_SRC) $$(FUZZ_WITH_$(1)) -lm -ldl -pthread
endef
$(foreach f,$(FUZZ_SRCS),$(eval $(call fuzz_rule,$(call fuzz_name,$(f)),$(f))))

fuzz: $(FUZZ_BINS)
	@fail=0; \
	for p in $(FUZZ_PLACES); do \
	  t=$${p%%:*}; d=$${p#*:}; \
	  mkdir -p build/fuzz/work/$$t build/fuzz/crashes/$$t; \
	  dict=; if [ -f $$d/$$t.dict ]; then dict=-dict=$$d/$$t.dict; fi; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=10 \
	    -rss_limit_mb=2048 -artifact_prefix=build/fuzz/crashes/$$t/ $$dict \
	    build/fuzz/work/$$t $$d/corpus/$$t > build/fuzz/$$t.log 2>&1; \
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
	@for p in $(FUZZ_PLACES); do \
	  t=$${p%%:*}; d=$${p#*:}; \
	  build/fuzz/fuzz_$$t -runs=0 $$d/corpus/$$t > build/fuzz/$$t.replay.log 2>&1 \
	    || { echo "fuzz-replay $$t FAILED"; tail -20 build/fuzz/$$t.replay.log; exit 1; }; \
	  echo "fuzz-replay $$t: $$(ls $$d/corpus/$$t | wc -l) inputs ok"; \
	done

.PHONY: fuzz fuzz-replay
