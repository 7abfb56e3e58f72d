# The s3 rock's build (rocks/s3/csrc/), read by the Makefile after mk/sources.mk (include rocks/*/rock.mk): its
# source lists and the rules of its module, added to the hooks of the core's build (SO, NGX_SO, ROCK_VM_SOS,
# ROCK_VM_RULES, ROCK_ASAN_SOS: the Makefile names them).  A rockspec cannot include this file, so
# spec/hosts/build_spec.lua checks that starvideos-s3-scm-1.rockspec builds from the lists below, in this order.
# (Its specs' npm packages, the AWS SDK's own SigV4 signer that rocks/s3/spec/sigv4_spec.lua checks ours against
# and the S3-compatible server and S3 client of its hosts specs and rocks/s3/bench/s3.lua, are spec/npm's: mk/npm.mk.)

# starvideos.sigv4 (sigv4.so: SigV4, S3's percent-encoding and each part's sums, on
# libcrypto): the starvideos-s3 rock's C module (rocks/s3/csrc), loaded by its bucket sink
# alone.  Of the core it links what it uses: the buffers, errors and hex (buf.c,
# error.c, text.c), the video's check its parts are fed through (stream.c, on
# media.c's MP4 check) and the binding's error table and stream (lua/error.c,
# lua/stream.c; not lua/verdict.c), with the Makefile's SECTIONS, so that the linker
# drops what of those files it does not call (GC_SECTIONS).
SIGV4_SRC     := rocks/s3/csrc/sigv4.c rocks/s3/csrc/parts.c
SIGV4_CORE_SRC := csrc/core/buf.c csrc/core/error.c csrc/core/text.c csrc/core/media.c csrc/core/stream.c \
                  csrc/lua/error.c csrc/lua/stream.c
SIGV4_MOD_SRC := $(SIGV4_CORE_SRC) $(SIGV4_SRC) rocks/s3/csrc/lua.c

SIGV4_OBJ    := $(call objs,$(SIGV4_MOD_SRC))
SO           += build/starvideos/sigv4.so
NGX_SO       += build/luajit/starvideos/sigv4.so
ROCK_VM_SOS  += starvideos/sigv4.so

build/starvideos/sigv4.so: $(SIGV4_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(GC_SECTIONS) -o $@ $^ $(CRYPTO_LIBS) -lm -ldl -pthread
$(SIGV4_OBJ): rocks/s3/csrc/sigv4.h rocks/s3/csrc/parts.h csrc/lua/lsv.h csrc/lua/compat.h

# the same for every VM ($(1)): build/<vm>/starvideos/sigv4.so, objects in build/<vm>/obj
define S3_VM_RULES
build/$(1)/starvideos/sigv4.so: $$(call vm_objs,$(1),$$(SIGV4_OBJ))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared $$(GC_SECTIONS) -o $$@ $$^ $$(CRYPTO_LIBS) -lm -ldl -pthread
$$(call vm_objs,$(1),$$(SIGV4_OBJ)): rocks/s3/csrc/sigv4.h rocks/s3/csrc/parts.h csrc/lua/lsv.h csrc/lua/compat.h
endef
ROCK_VM_RULES += S3_VM_RULES

# `make check`: the module built with ASan + UBSan (mk/check.mk's SAN_CC and SAN_FLAGS), a module of its own on
# libcrypto as sign.so's sanitized build is, with SECTIONS and GC_SECTIONS as sigv4.so
ASAN_SIGV4    := build/asan/starvideos/sigv4.so
ROCK_ASAN_SOS += $(ASAN_SIGV4)
$(ASAN_SIGV4): $(SIGV4_MOD_SRC) rocks/s3/csrc/sigv4.h rocks/s3/csrc/parts.h csrc/core/sv_core.h csrc/lua/lsv.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(LUA_INC) -shared -shared-libasan \
	  -o $@ $(SECTIONS) $(GC_SECTIONS) $(SIGV4_MOD_SRC) $(CRYPTO_LIBS) -lm
