# Lua 5.5 (Debian 12 packages 5.1 to 5.4 only): `make lua5.5` builds the interpreter and the modules the suite
# needs on it into $(LUA55) (build/vm5.5: bin/lua5.5, include/, lib/lua/5.5/, share/lua/5.5/) from the
# vendored sources (tools/lua55.sh), never into the system.  `make test-all` builds it first (VM_PRE_lua5.5)
# and runs the fast tier on it beside the other VMs; `eval "$$(make -s env VM=lua5.5)"` puts it on PATH.
# VENDOR: the Makefile's (../shared/vendor, found beside this checkout or the one it was cloned from); LuaSocket,
# which it lacks, is Debian's own source of its lua-socket package (tools/lua55.sh).

# (in the second make of a tier, after its install: busted's and the command line's pure-Lua modules are Debian's)
$(LUA55_BIN): tools/lua55.sh
	@echo "lua5.5: building Lua 5.5 and its modules into $(LUA55) from $(VENDOR)"
	@CC="$(CC)" sh tools/lua55.sh "$(LUA55)" "$(VENDOR)"

lua5.5: $(LUA55_BIN)
.PHONY: lua5.5
