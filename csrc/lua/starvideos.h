/* starvideos.h: what build/libstarvideos.a (`make static`) exports, for a C
   host that links Lua in (a game engine).  `make static` copies it to
   build/include/starvideos.h beside the archive; see examples/embed/.

     #include <lauxlib.h>
     #include "starvideos.h"
     luaL_requiref(L, "cjson", luaopen_cjson, 0);           (lua-cjson, the host's)
     luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
     luaL_requiref(L, "starvideos", luaopen_starvideos, 0); (the module, on the stack)

   The archive is built against one Lua (5.4 by default; 5.1, 5.2, 5.3 or
   LuaJIT with STATIC_LUA_INC): include the same Lua's lua.h. */
#ifndef STARVIDEOS_H
#define STARVIDEOS_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The whole module: pushes the table `require "starvideos"` gives.  It needs
   lua-cjson: "cjson" and "cjson.safe" in the loaded table (luaL_requiref, as
   above), or a package library that finds them; without, it raises an error
   saying what to preload.  It creates no global and needs no package library. */
int luaopen_starvideos(lua_State *L);

/* The C part alone (`starvideos.core`: validation, request building, answers),
   without lua-cjson. */
int luaopen_starvideos_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
