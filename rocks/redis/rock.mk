# The redis rock's build (rocks/redis/csrc/), read by the Makefile after mk/sources.mk (include rocks/*/rock.mk):
# its source lists, the rules of its modules and of its C test, added to the hooks of the core's build (SO, NGX_SO,
# TEST_BINS, ROCK_VM_SOS, ROCK_VM_RULES, ROCK_ASAN_TESTS, FAST_DEPS: the Makefile names them) and its fuzz target's C.
# A rockspec cannot include this file, so spec/hosts/build_spec.lua checks that starvideos-redis-scm-1.rockspec
# builds from the lists below, in this order.

# starvideos.redis (redis.so: the store's connection, hiredis' protocol reader and
# writer over its own socket, TLS on OpenSSL; loaded only when a store is used;
# built only where hiredis is found, see HIREDIS below).  Alone: it needs
# neither the core nor Lua but the binding's API.
REDIS_MOD_SRC := rocks/redis/csrc/redis.c rocks/redis/csrc/sock.c
# starvideos.fleet.native (fleet/native.so: the redis rock's grammar, a store's URL
# and a key's Cluster slot, in plain C): built everywhere, hiredis or not, so that a
# store's URL is read where redis.so is not; it needs neither the core nor hiredis.
FLEET_SRC     := rocks/redis/csrc/url.c
FLEET_MOD_SRC := $(FLEET_SRC) rocks/redis/csrc/native.c

# the packages of the rock's specs (rocks/redis/spec/, and the core's specs that run a store), the fast tier's:
# redis-server, hiredis (and libssl-dev, the build's: TLS) for starvideos.redis; hiredis for its release's binary
# rocks too.  (Installed before HIREDIS below is decided: the Makefile's INSTALL_GOALS.)
FAST_DEPS    += redis-server libhiredis-dev
RELEASE_DEPS += libhiredis-dev

# starvideos.redis (REDIS_MOD_SRC on hiredis): built where pkg-config finds hiredis (Debian: libhiredis-dev), else
# skipped with one line; `make HIREDIS=no` leaves it out.  Its objects take hiredis' include root
# (<hiredis/hiredis.h>) and no -D of its own.
HIREDIS      ?= $(if $(shell pkg-config --exists hiredis 2>/dev/null && echo y),yes,no)
HIREDIS_INC  ?= $(filter-out -I/usr/include,$(patsubst %/hiredis,%,$(shell pkg-config --cflags-only-I hiredis 2>/dev/null)))
HIREDIS_LIBS ?= $(or $(shell pkg-config --libs hiredis 2>/dev/null),-lhiredis)
REDIS_OBJ    := $(call objs,$(REDIS_MOD_SRC))
FLEET_OBJ    := $(call objs,$(FLEET_MOD_SRC))
REDIS_SO     := $(if $(filter yes,$(HIREDIS)),build/starvideos/redis.so,redis-skipped)
SO           += build/starvideos/fleet/native.so $(REDIS_SO)
NGX_SO       += build/luajit/starvideos/fleet/native.so
ROCK_VM_SOS  += starvideos/fleet/native.so $(if $(filter yes,$(HIREDIS)),starvideos/redis.so)

# the rock's grammar tested from C alone (rocks/redis/csrc/test/url_test.c; rocks/redis/spec/url_c_spec.lua)
REDIS_URL_TEST := build/redis_url_test
TEST_BINS      += $(REDIS_URL_TEST)
$(REDIS_URL_TEST): rocks/redis/csrc/test/url_test.c csrc/test/tap.h $(FLEET_SRC) rocks/redis/csrc/url.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -o $@ $(filter %.c,$^)

build/starvideos/fleet/native.so: $(FLEET_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^
$(FLEET_OBJ): rocks/redis/csrc/url.h csrc/lua/compat.h

build/starvideos/redis.so: $(REDIS_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(HIREDIS_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) -pthread
$(REDIS_OBJ): LUA_INC += $(HIREDIS_INC)
$(REDIS_OBJ): csrc/lua/compat.h rocks/redis/csrc/sock.h
redis-skipped:
	@echo "starvideos.redis not built: hiredis not found (pkg-config hiredis; Debian: libhiredis-dev)"
.PHONY: redis-skipped

# the same for every VM ($(1)): build/<vm>/starvideos/fleet/native.so and redis.so, objects in build/<vm>/obj
define REDIS_VM_RULES
build/$(1)/starvideos/fleet/native.so: $$(call vm_objs,$(1),$$(FLEET_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^
$$(call vm_objs,$(1),$$(FLEET_OBJ)): rocks/redis/csrc/url.h csrc/lua/compat.h

build/$(1)/starvideos/redis.so: $$(call vm_objs,$(1),$$(REDIS_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared -o $$@ $$^ $$(HIREDIS_LIBS) $$(SSL_LIBS) $$(CRYPTO_LIBS) -pthread
$$(call vm_objs,$(1),$$(REDIS_OBJ)): INC_$(1) += $$(HIREDIS_INC)
$$(call vm_objs,$(1),$$(REDIS_OBJ)): csrc/lua/compat.h rocks/redis/csrc/sock.h
endef
ROCK_VM_RULES += REDIS_VM_RULES

# `make check`: the grammar's C test built with ASan + UBSan (mk/check.mk's SAN_CC and SAN_FLAGS), leaks checked
REDIS_ASAN_URL_TEST := build/asan/redis_url_test
ROCK_ASAN_TESTS     += $(REDIS_ASAN_URL_TEST)
$(REDIS_ASAN_URL_TEST): rocks/redis/csrc/test/url_test.c csrc/test/tap.h $(FLEET_SRC) rocks/redis/csrc/url.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) $(DEFS) -o $@ rocks/redis/csrc/test/url_test.c $(FLEET_SRC)

# `make fuzz`: rocks/redis/csrc/fuzz/fuzz_store_url.c links the grammar (mk/fuzz.mk)
FUZZ_WITH_store_url := $(FLEET_SRC)
