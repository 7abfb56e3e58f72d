# `make release`: the release of the version the core's versioned rockspec names (rockspec/starvideos-<v>-1.rockspec,
# the one beside the scm one) into RELEASE_DIR: the source archive and each rock's source rock, a binary rock of each
# rock for each Lua of RELEASE_LUAS (LuaJIT takes 5.1's) in RELEASE_DIR/<lua>/, a LuaRocks manifest in each folder,
# BUILD (the glibc and libraries they were built on) and SHA256SUMS (tools/release.sh; docs/install.md, "Releases";
# spec/hosts/release_spec.lua).  Every dependency is the system's: luarocks is asked nothing of a server.
RELEASE_VERSION ?= $(patsubst rockspec/starvideos-%-1.rockspec,%,$(filter-out %-scm-1.rockspec,$(wildcard \
                   rockspec/starvideos-*-1.rockspec)))
RELEASE_DIR     ?= build/release
RELEASE_LUAS    ?= 5.1 5.2 5.3 5.4
release:
	@[ $(words $(RELEASE_VERSION)) = 1 ] || { echo "release: one versioned rockspec in rockspec/, not" \
	  "'$(RELEASE_VERSION)' (RELEASE_VERSION=)" >&2; exit 2; }
	@LUAROCKS=$(LUAROCKS) sh tools/release.sh $(RELEASE_DIR) $(RELEASE_VERSION) $(RELEASE_LUAS)

.PHONY: release
