/* compat.h: the Lua 5.4 C API on Lua 5.1, 5.2, 5.3 and LuaJIT 2.1.

   The binding is written against Lua 5.4.  Include this header right after
   <lua.h> and <lauxlib.h>: it gives an older VM what the binding uses and the
   VM lacks (each section below names the VMs it serves), and nothing else.

   One 5.1 ABI for PUC Lua 5.1 and LuaJIT: LuaJIT says it is 5.1, and a
   LuaRocks tree for 5.1 serves lua5.1 and luajit alike, whichever headers
   built its modules.  LuaJIT's headers also declare part of the 5.2 API, which
   PUC 5.1 does not export ("undefined symbol: luaL_setfuncs" in lua5.1).  So
   with either VM's headers the 5.1 section gives its own functions (its macros
   replace LuaJIT's names), and every other LuaJIT-only function is a build
   error (#pragma GCC poison below).

   User values.  5.4 gives a userdata any number; the older VMs get exactly one
   (more raises an error), in a tagged one-slot table, so that a userdata made
   without one (5.1: its environment is the globals) answers LUA_TNONE and is
   never written through.

   Integers.  Without an integer subtype (5.1, 5.2, LuaJIT) lua_isinteger is
   true for a number whose value is integral and fits a lua_Integer.  Not
   given: lua_tointegerx (5.2's and LuaJIT's truncate a float where 5.3+ fail).

   Anything used that a VM lacks must stop the build, not the require: implicit
   declarations are made errors below, whatever CFLAGS the build tool passes. */
#ifndef STARVIDEOS_COMPAT_H
#define STARVIDEOS_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic error "-Wimplicit-function-declaration"
#endif

#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 501 || LUA_VERSION_NUM > 505
#error "starvideos: compat.h knows Lua 5.1 to 5.5 and LuaJIT 2.1"
#endif

/* ------------------------------------------------------ 5.3 and older */
#if LUA_VERSION_NUM < 504

#define luaL_pushfail(L) lua_pushnil(L)

/* The value lives in slot 1 of a table, the userdata's user value (5.2, 5.3)
   or its environment (5.1, LuaJIT). */
#if LUA_VERSION_NUM >= 502
#define sv_compat_getuvtable(L, i) lua_getuservalue((L), (i))
#define sv_compat_setuvtable(L, i) lua_setuservalue((L), (i))
#else
#define sv_compat_getuvtable(L, i) lua_getfenv((L), (i))
#define sv_compat_setuvtable(L, i) ((void)lua_setfenv((L), (i)))
#endif

/* The key that tags the tables made here (5.1: the default environment of a
   userdata is a table too, the globals).  A string, not the address of a
   static: each file that includes this header would have its own. */
#define SV_COMPAT_UVTAG "compat.h: user values"

static inline void *sv_compat_newuserdatauv(lua_State *L, size_t size, int nuv) {
  void *p;
  if (nuv > 1) luaL_error(L, "compat.h: at most one user value before Lua 5.4");
  p = lua_newuserdata(L, size);
  if (nuv == 1) {
    lua_createtable(L, 1, 1);
    lua_pushliteral(L, SV_COMPAT_UVTAG);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    sv_compat_setuvtable(L, -2);
  }
  return p;
}

/* Pushes the slot table of the userdata at idx and returns 1, or pushes
   nothing and returns 0 when it has none. */
static inline int sv_compat_uvslots(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
  sv_compat_getuvtable(L, idx);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushliteral(L, SV_COMPAT_UVTAG);
    lua_rawget(L, -2);
    if (lua_toboolean(L, -1)) { lua_pop(L, 1); return 1; }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

static inline int sv_compat_getiuservalue(lua_State *L, int idx, int n) {
  if (n != 1 || !sv_compat_uvslots(L, idx)) { lua_pushnil(L); return LUA_TNONE; }
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

static inline int sv_compat_setiuservalue(lua_State *L, int idx, int n) {
  if (n != 1 || !sv_compat_uvslots(L, idx)) { lua_pop(L, 1); return 0; }
  lua_insert(L, -2);    /* value, slots -> slots, value */
  lua_rawseti(L, -2, 1);
  lua_pop(L, 1);
  return 1;
}

#define lua_newuserdatauv(L, size, nuv) sv_compat_newuserdatauv((L), (size), (nuv))
#define lua_getiuservalue(L, idx, n) sv_compat_getiuservalue((L), (idx), (n))
#define lua_setiuservalue(L, idx, n) sv_compat_setiuservalue((L), (idx), (n))

#endif /* < 504 */

/* ------------------------------------------------------ 5.2 and older */
#if LUA_VERSION_NUM < 503

/* The lua_Number range that converts to lua_Integer without overflow is
   [-2^(bits-1), 2^(bits-1)): both ends are powers of two, exact as doubles. */
static inline int sv_compat_isinteger(lua_State *L, int idx) {
  const lua_Number lim = (lua_Number)((lua_Integer)1 << (sizeof(lua_Integer) * 8 - 2)) * 2;
  lua_Number n;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, idx);
  return n >= -lim && n < lim && (lua_Number)(lua_Integer)n == n;
}
#define lua_isinteger(L, idx) sv_compat_isinteger((L), (idx))

/* These return the type of the pushed value since 5.3.  A macro naming
   itself calls the VM's function (no recursive expansion); 5.1's
   luaL_getmetatable is a macro over lua_getfield, so it gets the type too. */
#define lua_getfield(L, idx, k) (lua_getfield((L), (idx), (k)), lua_type((L), -1))
#define lua_rawget(L, idx) (lua_rawget((L), (idx)), lua_type((L), -1))
#define lua_rawgeti(L, idx, n) (lua_rawgeti((L), (idx), (n)), lua_type((L), -1))

#endif /* < 503 */

/* ------------------------------------------------- 5.1 and LuaJIT */
#if LUA_VERSION_NUM == 501

static inline int sv_compat_absindex(lua_State *L, int idx) {
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}
#define lua_absindex(L, idx) sv_compat_absindex((L), (idx))

#define lua_rawlen(L, idx) lua_objlen((L), (idx))
#define lua_pushglobaltable(L) lua_pushvalue((L), LUA_GLOBALSINDEX)

/* LuaJIT's own: not in PUC 5.1 (the names are compat.h's from here on) */
#undef luaL_newlibtable
#undef luaL_newlib

static inline lua_Number sv_compat_tonumberx(lua_State *L, int idx, int *isnum) {
  lua_Number n = lua_tonumber(L, idx);
  if (isnum) *isnum = n != 0 || lua_isnumber(L, idx);
  return n;
}
#define lua_tonumberx(L, idx, isnum) sv_compat_tonumberx((L), (idx), (isnum))

static inline void sv_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  int i;
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, nup) sv_compat_setfuncs((L), (l), (nup))

#define luaL_setmetatable(L, tname) (luaL_getmetatable((L), (tname)), (void)lua_setmetatable((L), -2))

static inline void *sv_compat_testudata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  int same;
  if (!p || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}
#define luaL_testudata(L, idx, tname) sv_compat_testudata((L), (idx), (tname))

#define luaL_newlibtable(L, l) lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))

/* The rest of what LuaJIT 2.1 (and OpenResty's luajit2) exports beyond PUC
   5.1: using one is a build error ("attempt to use poisoned ..."), with
   either VM's headers, rather than a module that lua5.1 cannot load.  (A
   macro of LuaJIT's headers defined above, naming one, is left alone.) */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC poison lua_copy lua_isyieldable lua_loadx lua_tointegerx lua_upvalueid lua_upvaluejoin
#pragma GCC poison lua_version lua_getexdata lua_setexdata lua_resetthread
#pragma GCC poison luaL_execresult luaL_fileresult luaL_loadbufferx luaL_loadfilex luaL_pushmodule
#pragma GCC poison luaL_traceback
#endif

#endif /* 501 */

#endif /* STARVIDEOS_COMPAT_H */
