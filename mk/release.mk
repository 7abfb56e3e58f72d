# `make release`: the release of the version lua/starvideos/config.lua names (its VERSION) into RELEASE_DIR: the
# source archive and each rock's source rock and versioned rockspec (made from its scm one), a binary rock of each
# rock for each Lua of RELEASE_LUAS (LuaJIT takes 5.1's) in RELEASE_DIR/<lua>/, for this machine and, cross-built, for
# each arch of RELEASE_CROSS (aarch64 on x86_64, against build/sysroot-aarch64: tools/sysroot.sh), a LuaRocks
# manifest in each folder, BUILD (the glibc and libraries they were built on) and SHA256SUMS (tools/release.sh;
# docs/install.md, "Releases"; spec/hosts/release_spec.lua).  Every dependency is the system's: luarocks is asked
# nothing of a server.  It installs what it needs first where apt-get is (the Makefile's GOAL_DEPS_release: the
# build's packages, every VM's headers, RELEASE_DEPS; RELEASE_CROSS is set there too).
# `make rockspecs`: the versioned rockspecs beside the scm ones in the checkout (rockspec/, rocks/<rock>/), made as
# the release makes them (tools/versioned.lua), those of another version removed; `make lint` fails when one differs
# (tools/shape_rocks.lua).
RELEASE_VERSION ?= $(shell sed -n 's/^M\.VERSION = "\([^"]*\)"$$/\1/p' lua/starvideos/config.lua)
RELEASE_DIR     ?= build/release
RELEASE_LUAS    ?= 5.1 5.2 5.3 5.4 5.5
# (VENDOR: the Makefile's, the sources Debian does not package: Lua 5.5's headers)
release: $(foreach a,$(RELEASE_CROSS),build/sysroot-$(a)/PACKAGES)
	@[ $(words $(RELEASE_VERSION)) = 1 ] || { echo "release: no VERSION in lua/starvideos/config.lua," \
	  "'$(RELEASE_VERSION)' (RELEASE_VERSION=)" >&2; exit 2; }
	@LUAROCKS=$(LUAROCKS) CROSS="$(RELEASE_CROSS)" VENDOR=$(VENDOR) sh tools/release.sh $(RELEASE_DIR) \
	  $(RELEASE_VERSION) $(RELEASE_LUAS)
# the sysroot of an arch: Debian's packages of that arch, unpacked (remade when the script changes)
build/sysroot-%/PACKAGES: tools/sysroot.sh
	@[ $* = aarch64 ] || { echo "release: a sysroot for aarch64 only, not $*" >&2; exit 2; }
	@sh tools/sysroot.sh build/sysroot-$*
rockspecs:
	@for scm in $(wildcard rockspec/*-scm-1.rockspec rocks/*/*-scm-1.rockspec); do \
	  out=$${scm%-scm-1.rockspec}-$(RELEASE_VERSION)-1.rockspec; rm -f $${scm%-scm-1.rockspec}-[0-9]*-1.rockspec; \
	  $(LUA) tools/versioned.lua $$scm $(RELEASE_VERSION) > $$out.tmp && mv $$out.tmp $$out || exit 1; \
	done

.PHONY: release rockspecs
