# starvideos: build, test, demo.  `make test` and `make demo` work from a fresh clone.
LUA       ?= lua5.4
LUA_INC   ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CURL_LIBS ?= $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -std=c99 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
DEFS      := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
ALL_CFLAGS = $(CFLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden

CORE_SRC  := csrc/sv_util.c csrc/sv_json.c csrc/sv_models.c csrc/sv_answer.c csrc/sv_call.c csrc/sv_http.c csrc/sv_file.c
BIND_SRC  := csrc/lsv_core.c
OBJ       := $(patsubst csrc/%.c,build/obj/%.o,$(CORE_SRC) $(BIND_SRC))
SO        := build/starvideos/core.so

# Debian packages the build, the tests and the demo need.
DEPS      := lua5.4 liblua5.4-dev libcurl4-openssl-dev lua-cjson lua-busted lua-socket lua-check pkg-config gcc make
BUSTED    := $(LUA) /usr/bin/busted

export LUA_PATH  := lua/?.lua;lua/?/init.lua;./?.lua;;
export LUA_CPATH := build/?.so;;

TEST_BIN  := build/test_core

.PHONY: all deps test check lint demo clean
all: $(SO) $(TEST_BIN)

# The core alone, without Lua: its C tests link only libcurl.
$(TEST_BIN): csrc/test/test_core.c $(filter-out build/obj/lsv_core.o,$(OBJ))
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $^ $(CURL_LIBS) -lm

build/obj/%.o: csrc/%.c csrc/sv_core.h | deps-checked
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_INC) -c $< -o $@

$(SO): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJ) $(CURL_LIBS) -lm

# Install what is missing (once), so a fresh Debian machine needs nothing else.
deps:
	@sh tools/deps.sh $(DEPS)
deps-checked:
	@sh tools/deps.sh $(DEPS)
.PHONY: deps-checked

lint:
	luacheck -q lua bin spec

test: deps $(SO) $(TEST_BIN) lint
	$(BUSTED) $(BUSTED_ARGS)

demo: deps $(SO)
	@sh tools/demo.sh

clean:
	rm -rf build

bench: deps $(SO)
	$(LUA) bench/wait_all.lua
	$(LUA) bench/download.lua
.PHONY: bench

-include mk/*.mk
