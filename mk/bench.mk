# `make bench`: every bench/*.lua against its baseline, measured in the same run
# (bench/run.lua starts its own nginx, runs each script, prints one table and
# writes it with the machine's description to bench/RESULTS.md; BENCH_RESULTS=
# another path, BENCH_QUICK=1 a short run).  The C baselines live in
# csrc/bench/ and link libcurl only.
#
#   make bench          the whole run (a few minutes)
#   make bench-tools    only the C baselines (build/bench/)

BENCH_TOOLS := build/bench/easy_loop build/bench/multi_poll

build/bench/%: csrc/bench/%.c csrc/bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $< $(CURL_LIBS)

bench-tools: $(BENCH_TOOLS)

bench: $(SO) $(BENCH_TOOLS) $(NPM_STAMP) # (a rock's bench may run a server of spec/npm's)
	$(LUA) bench/run.lua

.PHONY: bench bench-tools
